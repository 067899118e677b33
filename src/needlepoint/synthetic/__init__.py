"""The synthetic clinic: plausible, fully synthetic patients generated through the
actions, with the effects planted in them written out so analytics can be checked
against the truth. Never real data."""

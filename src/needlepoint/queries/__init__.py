"""The read side: plain functions over a read-only connection, scoped to one clinic and
checked against the reader's permissions. Reads never write."""

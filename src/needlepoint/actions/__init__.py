"""The write side: one function per clinical act, and the only code that writes.

Every action has the same shape (cosmicpython's handlers, zulip's `do_*`):
open the unit of work → load the acting user and check tenant and permission → load
records (scoped to the clinic) → apply domain rules → stage new records → stage one
audit event → commit. Web, API, CLI, importers and the demo generator all call these.
May import `domain` and the unit-of-work interface; never the web or CLI."""

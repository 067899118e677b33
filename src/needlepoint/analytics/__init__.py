"""Clinic analytics: the benefits dashboard, practitioner variation, recovery curves,
medication, adverse-event surveillance, prognosis and the evidence beside them.

`dataset` loads a clinic's records once (SQLAlchemy Core → Arrow); every other module is
a plain function over that snapshot, computed with DuckDB (SQL over the Arrow tables,
nothing downloaded), statsmodels and lifelines. Imported by `web/api/analytics.py`,
`web/ui/analytics.py` and `bench/analytics.py`; imports only `domain` and `adapters.db`."""

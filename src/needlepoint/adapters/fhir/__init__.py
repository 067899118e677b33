"""The FHIR R4 boundary (issue 17): pure mapping from our records to `fhir.resources`'
R4B models (`mapping`), and the code systems used with how each code was verified
(`codes`). Imported by the read side (`queries.fhir`) and the web routes; it imports only
the domain and `fhir.resources`. R4B models only: R4 data read through R5 models silently
loses fields."""

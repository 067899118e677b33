"""The readers an import can use, by format name: each turns a path into neutral import
records (`importing.records`). A new format (the FHIR R4 reader) registers itself here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from needlepoint.importing.csv_reader import read_csv_folder
from needlepoint.importing.fhir_reader import read_fhir
from needlepoint.importing.records import ReadResult

Reader = Callable[[Path], ReadResult]

READERS: dict[str, Reader] = {"csv": read_csv_folder, "fhir": read_fhir}
"""Format name → reader of a file or folder."""

"""Documents that leave the system on paper or as a file: the signed session note, the
progress / discharge report and the patient's copy of a signed consent.

`model.py` is a page's content as plain blocks (headings, paragraphs, facts, tables,
figures, a drawn signature); the web layer fills it from the read side, and the same
blocks are shown as a print-friendly HTML page and written as a PDF (`pdf.py`, fpdf2 with
the DejaVu Sans fonts that matplotlib ships), so the two always say the same thing.
`plots.py` draws an outcome measure over time against its responder threshold
(matplotlib, PNG).

May import: domain only (and fpdf2, matplotlib)."""

"""Reports: pure consumers of Result objects (feedback.md, the terminal, HTML, dashboard)."""

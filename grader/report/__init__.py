"""Reports: pure consumers of Result objects (feedback.md and .html, the terminal report,
the class dashboard, progress). Nothing here re-grades or imports student code; each writer
escapes at its own boundary."""

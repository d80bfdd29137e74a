"""Reports: pure consumers of `Result` objects (student pages, class dashboard, progress).

Nothing here re-grades or imports student code; each writer escapes at its own boundary.
"""

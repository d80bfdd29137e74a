"""The reference solution, used on the grader's side only: it is never copied into a box."""

"""nngrader's in-box harness: loads a submission and runs the probes the grader asks for.

This package is the only code of nngrader that runs in the box. It imports the standard
library and numpy, never the grader: the box gets a copy of it as `nnharness/` beside a
small entry script `harness.py` (entry.py here), started as

    python -I -S -B harness.py plan.json [LIBDIR ...]

It judges nothing. Each probe runs in a child forked from the clean harness process (numpy
imported, student code never loaded there), under its own wall-clock limit; the child loads
the student's definitions, makes the calls and sends back *raw* observations (returned
values, array attributes, parameters after an update) as JSON through a pipe, and the
harness writes them all to out/results.json. Nothing is pickled.

Modules, by probe family:
  boundary        values and exceptions as JSON data; recording each step of a probe
  names, student  the method names students use; what the plan says (roles, [interface])
  calling         fitting a call to the parameters a student's method declares
  params          finding and planting weight and bias arrays, wherever they are kept
  layer_probes    linear, ReLU and loss adapters and probes, each layer alone
  timing          each layer timed against numpy doing the same work
  network         the student's network: built, traced, its parameters mapped
  drivers         one training step: the student's train, their training function, or
                  the grader's loop over their forward/backward/step or their layers
  network_probes  gradient check, update scenarios, evaluate
  training        the network learning a small task
  process         forking a child per probe, limits, leftovers, results out
  lanes           probes side by side when the box has cores to itself
"""

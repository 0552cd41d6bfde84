"""The run and its stop: run state, the six-phase sequence, the deadline, hooks,
signals and task tracking. ``runtime`` is the door the rest of the package uses."""

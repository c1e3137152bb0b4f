"""Faults at random, Jepsen's way: a seeded schedule of overlapping faults on the
multi-host cluster (`schedule`, `nemesis`) while a labelled stream runs (`run`),
and a checker of the history (`checker`): every image compared exactly once."""

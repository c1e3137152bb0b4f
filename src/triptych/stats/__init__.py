"""The statistics behind "which model is really better": pure functions over
counts and arrays (numpy and scipy), no I/O, each checked by a unit test against
an independent computation or a simulation."""

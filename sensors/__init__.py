"""The pure engine of triggergate: specs, the event envelope, filters, conditions, parameters.

Nothing in this package performs I/O, reads clocks, sleeps or logs. Time is passed in.
"""

"""One pure ``plan(obj, observed, *, now) -> Plan`` per kind: the children to apply, the objects
to delete, the new status and the Events. No I/O."""

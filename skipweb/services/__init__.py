"""The service layer: what the entry points (skipweb.ui, skipweb.cli, workers) ask for, done once.

    launch      submit a grid (rows, then broker messages), record a CLI run
    runs        cancel, retry or delete a run
    schema      check (or create) the database's schema at start-up, or migrate it
    accounts    sign-in changes: a user's password in the dashboard's password file
    training    execute one run under its lease
    landscapes  request, compute and execute loss-landscape jobs; settle them when their run ends
    execution   the one claim → heartbeat → finish wrapper both use
    broker      the Celery app, publishing, and the one routing rule (route)
    recovery    the sweeps that requeue work of dead workers and republish lost messages
    sink        DbSink: the trainer's numbers into the database, fenced by the lease

Every write an entry point makes goes through here (.importlinter: writes). Services use db and the ML
modules; nothing here imports an entry point.
"""

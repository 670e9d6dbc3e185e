"""Training and measuring one run: the trainer and its optimizer and schedule, the sinks it reports to, the
probes it runs, its checkpoints, evaluation, and loss landscapes around its final weights. Plain torch: no
database, broker, service or entry point (.importlinter's "ml" contract)."""

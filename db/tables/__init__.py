"""All skipweb tables, one module per entity. Importing this package registers them on ``Base.metadata``."""

from db.tables.blocks import SqlBlockLayer, SqlBlockStep
from db.tables.landscape_jobs import SqlLandscapeJob
from db.tables.landscapes import SqlLandscape
from db.tables.metrics import SqlLatestMetric, SqlMetric
from db.tables.probes import SqlProbeLayer, SqlProbeStep
from db.tables.runs import SqlExperiment, SqlRun
from db.tables.workers import SqlWorker

__all__ = [
    "SqlBlockLayer", "SqlBlockStep", "SqlExperiment", "SqlLandscape", "SqlLandscapeJob", "SqlLatestMetric",
    "SqlMetric", "SqlProbeLayer", "SqlProbeStep", "SqlRun", "SqlWorker",
]

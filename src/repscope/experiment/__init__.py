"""Studies: a TOML config (:mod:`repscope.experiment.config`) and the pipeline that runs it."""

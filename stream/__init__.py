"""driftline's shell around the monitoring core: settings, the Kafka broker launcher, the
command line, and (with the live service) the Faust app."""

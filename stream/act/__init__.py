"""``driftline act``: turns driftline's commands into actions in the tools teams already run
(an MLflow Model Registry, any CloudEvents HTTP receiver).

Pure decisions, each in its own module and tested without a broker: ``config`` (the
``actions:`` section), ``received`` (a record, parsed and bounded), ``plan`` (event + config ->
steps or a refusal), ``delivery`` (the retry schedule), ``acted`` (the acted-id log's meaning).
The shell: ``acted_topic`` (that log on Kafka), ``mlflow_action``, ``http_action``, ``metrics``,
``dead_letters`` and ``app`` (the loop).
"""

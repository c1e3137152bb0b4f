-- The aggregate function recomputes one model version's minute from its rows.
CREATE INDEX predictions_model_version_time_idx ON predictions (model_name, model_version, predicted_at);

-- int8 beside fp32, live (issue 27): the `infer-int8` function answers each image
-- with every champion's int8 export, where one is published. Its answers sit in a
-- table of their own, keyed like `predictions`, so they never enter a comparison,
-- a metric window or a consensus: the Compare page sets each beside the champion's
-- fp32 answer to the same image by the same version.
CREATE TABLE int8_predictions (
    image_id         UUID             NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    model_name       TEXT             NOT NULL,
    model_version    TEXT             NOT NULL,
    predicted_class  TEXT             NOT NULL,
    confidence       DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    inference_ms     DOUBLE PRECISION NOT NULL CHECK (inference_ms >= 0),
    backend          TEXT,
    created_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, model_name, model_version)
);
CREATE INDEX int8_predictions_created_at_idx ON int8_predictions (created_at DESC);

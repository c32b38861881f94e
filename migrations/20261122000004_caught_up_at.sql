-- When ingest last saw the partition fully applied (committed offset at the broker's high
-- watermark). The oldest of these is the time up to which the views are complete: the API's
-- X-Data-As-Of header. NULL: never caught up yet.
ALTER TABLE consumer_offsets ADD COLUMN caught_up_at timestamptz;

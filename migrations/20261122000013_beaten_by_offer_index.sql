-- why_not_ranked reads one offer's winners over the window: without this index the read
-- scans every (day, offer, winner) row of the tenant (measured: 268k rows, 18 ms for 90 days).
CREATE INDEX beaten_by_daily_offer ON beaten_by_daily (tenant_id, offer_id, day);
CREATE INDEX beaten_by_segment_daily_offer ON beaten_by_segment_daily (tenant_id, segment_id, offer_id, day);

-- Running totals of selection_daily's columns (issue 14), as migration `running_totals` keeps
-- them for the interaction counters: per tenant (segment '' only: all customers), a checkpoint
-- at every day with candidates, holding each offer's selection counters and score buckets
-- summed over all days up to it. selection_frequency without a segment and score_distribution
-- by offer or category read two rows per offer whatever the window.
--
-- (This table was first added to `running_totals` itself after that migration had been
-- applied; it lives here so that an applied migration stays as it was.)
--
-- The columns are selection_daily's, with segment_id added to the key. Sums that never restart
-- cannot be bounded by a day's traffic as selection_daily's are: the score sum is numeric here
-- (a bigint of micro-units holds ~9.2 x 10^12 scores, about six years of one offer scored
-- 50,000 times a second). The counts stay bigint.
CREATE TABLE selection_offer_totals (LIKE selection_daily INCLUDING DEFAULTS) WITH (fillfactor = 60);
ALTER TABLE selection_offer_totals
    ADD COLUMN segment_id text COLLATE "C" NOT NULL DEFAULT '',
    ALTER COLUMN score_sum_micros TYPE numeric,
    ADD PRIMARY KEY (tenant_id, segment_id, day, offer_id);

-- Backfill from selection_daily, so an existing deployment's totals are exact from the start:
-- the checkpoints are the days with rows; each offer gets a row at every checkpoint from its
-- first day on, holding its counters summed up to that day. The counters are every column
-- after the key, named from the catalog rather than listed again.
INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT DISTINCT 'selection_offer_totals', tenant_id, '', day FROM selection_daily;

DO $$
DECLARE
    counters text[];
BEGIN
    SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum) INTO counters
      FROM pg_attribute a
     WHERE a.attrelid = 'selection_daily'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT IN ('tenant_id', 'day', 'offer_id');
    EXECUTE format(
        'INSERT INTO selection_offer_totals (tenant_id, segment_id, day, offer_id, %s)
         SELECT k.tenant_id, '''', d.day, k.offer_id, %s
           FROM (SELECT tenant_id, offer_id, min(day) AS first_day FROM selection_daily GROUP BY tenant_id, offer_id) k
           JOIN running_total_days d
             ON d.view = ''selection_offer_totals'' AND d.tenant_id = k.tenant_id AND d.segment_id = ''''
            AND d.day >= k.first_day
           LEFT JOIN selection_daily r ON r.tenant_id = k.tenant_id AND r.day = d.day AND r.offer_id = k.offer_id
         WINDOW w AS (PARTITION BY k.tenant_id, k.offer_id ORDER BY d.day)',
        array_to_string(counters, ', '),
        (SELECT string_agg(format('sum(COALESCE(r.%s, 0)) OVER w', c), ', ') FROM unnest(counters) c));
END
$$;

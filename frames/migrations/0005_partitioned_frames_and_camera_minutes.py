"""Frames keyed by their frame id, partitioned by day on PostgreSQL, with a per-camera
per-minute rollup kept by a trigger.

PostgreSQL: the existing table (populated or not) is renamed, a table partitioned by range of
captured_at with the primary key (frame_id, captured_at) is created with a DEFAULT partition
and one partition for each day the old rows cover plus the days ahead, the rows are copied,
the old table dropped, the indexes built, and the rollup filled from the frames before its
trigger is installed. One transaction: a failure leaves the old table as it was. It takes as
long as copying the table: run it in a maintenance window on a big one.

SQLite (the embedded default): no partitions and no rollup trigger; the table is rebuilt with
frame_id as its primary key, which is what Django does for such a change.
"""

from django.db import migrations, models
from django.db.migrations.operations.base import Operation

PARTITIONS_AHEAD_DAYS = 7

FUNCTIONS = r"""
-- The day partition for `day` (UTC), unless it exists. Rows that arrived before it (they wait
-- in the DEFAULT partition) move into it, in the same transaction. LIKE + ATTACH locks the
-- parent less than CREATE TABLE … PARTITION OF (SHARE UPDATE EXCLUSIVE: stores go on).
CREATE OR REPLACE FUNCTION frames_create_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'frames_frame_p' || to_char(day, 'YYYYMMDD');
    low timestamptz := day::timestamp AT TIME ZONE 'UTC';
    high timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- No row may join the DEFAULT partition between the move and the ATTACH's check of it
    -- (only stores of days without a partition wait; reads go on).
    LOCK TABLE frames_frame_default IN EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE %I (LIKE frames_frame INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   name);
    EXECUTE format('WITH moved AS (DELETE FROM frames_frame_default WHERE captured_at >= %L
                    AND captured_at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                   low, high, name);
    EXECUTE format('ALTER TABLE frames_frame ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   name, low, high);
    RETURN true;
END $$;

-- A stored frame's capture->stored latency bucket: frames.models.LATENCY_BASE.
CREATE OR REPLACE FUNCTION frames_latency_bucket(latency_ms double precision) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN latency_ms IS NULL THEN NULL
                WHEN latency_ms < 1 THEN '0'
                ELSE (1 + floor(ln(latency_ms) / ln(1.1)))::int::text END
$$;

-- Count one frame row (n = 1) or take it back (n = -1) in its camera's minute.
CREATE OR REPLACE FUNCTION frames_rollup_add(
    camera text, captured timestamptz, seq bigint, frame_status text, frame_reason text,
    latency double precision, canary boolean, n integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    reason_key text;
    bucket text;
BEGIN
    IF canary THEN
        RETURN;  -- canary frames stay out of the camera figures
    END IF;
    IF frame_status = 'stored' THEN
        bucket := frames_latency_bucket(latency);
    ELSE
        reason_key := frame_status || ':' || coalesce(nullif(frame_reason, ''), 'unknown');
    END IF;
    INSERT INTO frames_cameraminute AS m (
        camera_id, minute, frames, numbered, stored, dropped, failed,
        first_sequence, last_sequence, first_at, last_at, reasons, latency
    ) VALUES (
        camera, date_trunc('minute', captured, 'UTC'), n,
        CASE WHEN seq >= 0 THEN n ELSE 0 END,
        CASE WHEN frame_status = 'stored' THEN n ELSE 0 END,
        CASE WHEN frame_status = 'dropped' THEN n ELSE 0 END,
        CASE WHEN frame_status = 'failed' THEN n ELSE 0 END,
        CASE WHEN seq >= 0 THEN seq END, CASE WHEN seq >= 0 THEN seq END, captured, captured,
        CASE WHEN reason_key IS NULL THEN '{}' ELSE jsonb_build_object(reason_key, n) END,
        CASE WHEN bucket IS NULL THEN '{}' ELSE jsonb_build_object(bucket, n) END
    ) ON CONFLICT (camera_id, minute) DO UPDATE SET
        frames = m.frames + EXCLUDED.frames,
        numbered = m.numbered + EXCLUDED.numbered,
        stored = m.stored + EXCLUDED.stored,
        dropped = m.dropped + EXCLUDED.dropped,
        failed = m.failed + EXCLUDED.failed,
        -- a row taken back (a status change) is added again at once: the bounds stand
        first_sequence = LEAST(m.first_sequence, EXCLUDED.first_sequence),
        last_sequence = GREATEST(m.last_sequence, EXCLUDED.last_sequence),
        first_at = LEAST(m.first_at, EXCLUDED.first_at),
        last_at = GREATEST(m.last_at, EXCLUDED.last_at),
        reasons = CASE WHEN reason_key IS NULL THEN m.reasons ELSE jsonb_set(m.reasons,
            ARRAY[reason_key], to_jsonb(coalesce((m.reasons ->> reason_key)::bigint, 0) + n)) END,
        latency = CASE WHEN bucket IS NULL THEN m.latency ELSE jsonb_set(m.latency,
            ARRAY[bucket], to_jsonb(coalesce((m.latency ->> bucket)::bigint, 0) + n)) END;
END $$;

CREATE OR REPLACE FUNCTION frames_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM frames_rollup_add(OLD.camera_id, OLD.captured_at, OLD.sequence, OLD.status,
                                  OLD.reason, OLD.latency_ms, OLD.test, -1);
    END IF;
    PERFORM frames_rollup_add(NEW.camera_id, NEW.captured_at, NEW.sequence, NEW.status,
                              NEW.reason, NEW.latency_ms, NEW.test, 1);
    RETURN NULL;
END $$;
"""

COLUMNS = (
    "frame_id, camera_id, sequence, captured_at, status, reason, stage, error, source, width, "
    "height, format, size_bytes, trace_id, span_id, sampled, test, trace_context, timings, "
    "results, finished_at, latency_ms"
)

CONVERT = rf"""
ALTER TABLE frames_frame RENAME TO frames_frame_unpartitioned;
ALTER TABLE frames_frame_unpartitioned RENAME CONSTRAINT frames_frame_pkey
    TO frames_frame_unpartitioned_pkey;
ALTER TABLE frames_frame_unpartitioned DROP CONSTRAINT frame_id_unique;
DROP INDEX frame_trace_id, frame_camera_time, frame_status_time_id, frame_reason_time_id,
    frame_time;

CREATE TABLE frames_frame (
    frame_id varchar(160) NOT NULL,
    camera_id varchar(64) NOT NULL,
    sequence bigint NOT NULL,
    captured_at timestamp with time zone NOT NULL,
    status varchar(16) NOT NULL,
    reason varchar(64) NOT NULL,
    stage varchar(16) NOT NULL,
    error text NOT NULL,
    source varchar(255) NOT NULL,
    width integer NULL CHECK (width >= 0),
    height integer NULL CHECK (height >= 0),
    format varchar(16) NOT NULL,
    size_bytes integer NULL CHECK (size_bytes >= 0),
    trace_id varchar(32) NOT NULL,
    span_id varchar(16) NOT NULL,
    sampled boolean DEFAULT false NOT NULL,
    test boolean DEFAULT false NOT NULL,
    trace_context jsonb NOT NULL,
    timings jsonb NOT NULL,
    results jsonb NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    latency_ms double precision NULL,
    CONSTRAINT frames_frame_pkey PRIMARY KEY (frame_id, captured_at)
) PARTITION BY RANGE (captured_at);
-- Rows of a day that has no partition yet land here, never fail (frames/partitions.py).
CREATE TABLE frames_frame_default PARTITION OF frames_frame DEFAULT;

{FUNCTIONS}

SELECT frames_create_partition(day) FROM (
    SELECT DISTINCT (captured_at AT TIME ZONE 'UTC')::date AS day
    FROM frames_frame_unpartitioned
    UNION
    SELECT generate_series(0, {PARTITIONS_AHEAD_DAYS})
        + ((now() AT TIME ZONE 'UTC')::date - 1)
) AS days ORDER BY day;

INSERT INTO frames_frame ({COLUMNS}) SELECT {COLUMNS} FROM frames_frame_unpartitioned;
DROP TABLE frames_frame_unpartitioned;

-- The model's indexes (frames/models.py says which query needs each), on every partition.
CREATE INDEX frame_trace_id ON frames_frame (trace_id);
CREATE INDEX frame_camera_time ON frames_frame (camera_id, captured_at, frame_id);
CREATE INDEX frame_status_time_id ON frames_frame (status, captured_at, frame_id);
CREATE INDEX frame_reason_time_id ON frames_frame (reason, captured_at, frame_id)
    WHERE NOT (reason = '');
CREATE INDEX frame_time ON frames_frame (captured_at, frame_id);

-- The rollup of the rows copied, then the trigger that keeps it from now on.
WITH cells AS (
    SELECT camera_id, date_trunc('minute', captured_at, 'UTC') AS minute, status,
           status || ':' || coalesce(nullif(reason, ''), 'unknown') AS reason_key,
           CASE WHEN status = 'stored' THEN frames_latency_bucket(latency_ms) END AS bucket,
           count(*) AS n, count(*) FILTER (WHERE sequence >= 0) AS numbered,
           min(sequence) FILTER (WHERE sequence >= 0) AS first_sequence,
           max(sequence) FILTER (WHERE sequence >= 0) AS last_sequence,
           min(captured_at) AS first_at, max(captured_at) AS last_at
    FROM frames_frame WHERE NOT test GROUP BY 1, 2, 3, 4, 5
), reasons AS (
    SELECT camera_id, minute, jsonb_object_agg(reason_key, n) AS reasons FROM (
        SELECT camera_id, minute, reason_key, sum(n) AS n FROM cells
        WHERE status <> 'stored' GROUP BY 1, 2, 3
    ) r GROUP BY 1, 2
), latencies AS (
    SELECT camera_id, minute, jsonb_object_agg(bucket, n) AS latency FROM (
        SELECT camera_id, minute, bucket, sum(n) AS n FROM cells
        WHERE bucket IS NOT NULL GROUP BY 1, 2, 3
    ) l GROUP BY 1, 2
)
INSERT INTO frames_cameraminute (
    camera_id, minute, frames, numbered, stored, dropped, failed,
    first_sequence, last_sequence, first_at, last_at, reasons, latency
)
SELECT c.camera_id, c.minute, sum(c.n), sum(c.numbered),
       coalesce(sum(c.n) FILTER (WHERE c.status = 'stored'), 0),
       coalesce(sum(c.n) FILTER (WHERE c.status = 'dropped'), 0),
       coalesce(sum(c.n) FILTER (WHERE c.status = 'failed'), 0),
       min(c.first_sequence), max(c.last_sequence), min(c.first_at), max(c.last_at),
       coalesce(r.reasons, '{{}}'), coalesce(l.latency, '{{}}')
FROM cells c
LEFT JOIN reasons r ON r.camera_id = c.camera_id AND r.minute = c.minute
LEFT JOIN latencies l ON l.camera_id = c.camera_id AND l.minute = c.minute
GROUP BY c.camera_id, c.minute, r.reasons, l.latency;

-- Row-level: each stored frame is one INSERT of one row, so a statement trigger would
-- cost the same and read transition tables besides.
CREATE TRIGGER frames_rollup AFTER INSERT OR UPDATE ON frames_frame
    FOR EACH ROW EXECUTE FUNCTION frames_rollup();
"""


class KeyFramesByFrameId(Operation):
    """The state change of the model (frame_id the key, no surrogate id); on PostgreSQL the
    partitioned table of CONVERT, elsewhere Django's own table rebuild."""

    reversible = False

    def __init__(self) -> None:
        self.state_operations = [
            migrations.RemoveConstraint(model_name="frame", name="frame_id_unique"),
            migrations.RemoveField(model_name="frame", name="id"),
            migrations.AlterField(
                model_name="frame",
                name="frame_id",
                field=models.CharField(max_length=160, primary_key=True, serialize=False),
            ),
        ]

    def deconstruct(self):  # type: ignore[no-untyped-def]
        return (self.__class__.__qualname__, [], {})

    def state_forwards(self, app_label, state):  # type: ignore[no-untyped-def]
        for operation in self.state_operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(CONVERT, params=None)
            return
        state = from_state
        for operation in self.state_operations:
            after = state.clone()
            operation.state_forwards(app_label, after)
            operation.database_forwards(app_label, schema_editor, state, after)
            state = after

    def describe(self) -> str:
        return "Key frames by frame id; partition them by day on PostgreSQL"


class Migration(migrations.Migration):

    dependencies = [
        ('frames', '0004_frame_sampled_and_test'),
    ]

    operations = [
        migrations.CreateModel(
            name='CameraMinute',
            fields=[
                ('pk', models.CompositePrimaryKey('camera_id', 'minute', blank=True, editable=False, primary_key=True, serialize=False)),
                ('camera_id', models.CharField(max_length=64)),
                ('minute', models.DateTimeField()),
                ('frames', models.BigIntegerField(default=0)),
                ('numbered', models.BigIntegerField(default=0)),
                ('stored', models.BigIntegerField(default=0)),
                ('dropped', models.BigIntegerField(default=0)),
                ('failed', models.BigIntegerField(default=0)),
                ('first_sequence', models.BigIntegerField(null=True)),
                ('last_sequence', models.BigIntegerField(null=True)),
                ('first_at', models.DateTimeField(null=True)),
                ('last_at', models.DateTimeField(null=True)),
                ('reasons', models.JSONField(default=dict)),
                ('latency', models.JSONField(default=dict)),
            ],
            options={
                'ordering': ['camera_id', 'minute'],
            },
        ),
        KeyFramesByFrameId(),
    ]

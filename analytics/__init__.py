"""Pure domain computation for vitalstream.

No I/O, no asyncio, no Faust, MQTT, HTTP or pydantic here: only numpy, scipy
and the standard library. Time is always passed in (integer epoch ms).

Public API for the stream worker (import from the submodules; every stateful
class has `to_dict()` / `from_dict()` returning plain JSON-able dicts, so it
can live in a Faust table keyed by patient pseudonym):

Windows and features (`analytics.windows`, `analytics.features`)
    pw = PatientWindows(specs=DEFAULT_SPECS, *, allowed_lateness_ms=30_000,
                        idle_timeout_ms=60_000, feature_config=None)
    pw.add(metrics, values, ts_ms, quality=None, *, now_ms) -> WindowResult
    pw.advance(now_ms) -> WindowResult            # idle close by wall clock
    add_batch([(pw, metrics, values, ts_ms, quality), ...], *, now_ms)
        -> list[WindowResult]                      # many patients, one numpy pass
    advance_batch([pw, ...], now_ms) -> list[WindowResult]
    WindowResult: closed: list[WindowFeatures], late_index, dropped_index,
                  flagged_count, watermark_ms
    WindowFeatures: metric, window ("1m" | "5m"), start_ms, end_ms,
                    flagged_count, features {count, coverage, mean, median, min,
                    max, std, mad, p5, p95, slope_per_h, time_below_ms,
                    time_above_ms, [sdnn_ms, rmssd_ms, pnn50_pct, lf_ms2, hf_ms2,
                    lf_hf for rr_interval]}; .to_dict() (NaN -> None)
    compute_features(metric, values, ts_ms, start_ms, end_ms) -> WindowFeatures
    compute_features_batch(values, ts_ms, offsets, start_ms, end_ms, *, rate_hz,
                           below, above, hrv=False) -> FeatureBatch (arrays)
    `quality` is a per-reading mask (bool or int bit mask, non-zero = flagged);
    flagged and non-finite readings are excluded from features and counted.
    Manual observations (consciousness, supplemental_oxygen, spo2_scale2) skip
    the windows and go to News2State directly.

NEWS2 (`analytics.news2`, RCP 2017)
    score_news2(params: {metric: Observation(value, ts_ms) | float}, now_ms,
                config=News2Config()) -> News2Result
    News2State().update(metric, value, ts_ms) -> bool;  .score(now_ms) -> News2Result
    News2Result: total, band (News2Band), monitoring, response, any_single_3,
                 scale, parameters, missing, stale, partial; .to_dict()
    news2_points(metric, values, *, scale2, on_oxygen) -> int8 array (batch path)

Baseline and anomaly (`analytics.baseline`, `analytics.anomaly`)
    scorer = AnomalyScorer(config=None, *, window="1m")
    scorer.observe_window(window_features) -> AnomalyScore | None
    AnomalyScore: robust_z, cusum_pos, cusum_neg, ewma_z, score (>= 1 = at an
                  alarm limit), outlier, trend (+1/-1/0), baseline_*; .to_dict()
    BaselineState (per metric, inside the scorer); array twins for batches:
    robust_z, cusum_step, ewma_step, combined_score, ew_alpha, update_arrays.

Alerts (`analytics.alerts`, rules in `analytics.alert_rules`)
    machine = AlertMachine(rules)   # AlertRule or plain dicts; DEFAULT_RULES
    signals = collect_signals(closed_windows, anomaly_scores, news2_result)
    machine.observe(pid, ts_ms, signals, *, quality=(), news2_band=None)
        -> list[AlertEvent]
    machine.tick(now_ms) -> list[AlertEvent]      # escalation with no new data
    machine.ack(pid, rule, ts_ms, *, alert_id=None, by=None) -> list[AlertEvent]
    machine.silence(pid, until_ms, ts_ms, *, rule=None, by=None)
    machine.patient_to_dict(pid) / machine.load_patient(pid, data)
    AlertEvent: event_id (deterministic sha1), alert_id, pid, rule, kind
                (raised|escalated|acknowledged|resolved|suppressed), severity,
                ts_ms, raised_ts_ms, value, seq, reason, by; .to_dict()

Errors: everything raised derives from `analytics.errors.AnalyticsError`.
"""

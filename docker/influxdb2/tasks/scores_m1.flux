option task = {name: "vs_scores_m1", every: 1m}

news2_total = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "news2_total")
    |> aggregateWindow(every: 1m, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "news2_total")

news2_total_mean = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "news2_total")
    |> aggregateWindow(every: 1m, fn: mean, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "news2_total_mean")

anomaly_combined = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "anomaly_combined")
    |> aggregateWindow(every: 1m, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "anomaly_combined")

union(tables: [news2_total, news2_total_mean, anomaly_combined])
    |> to(bucket: "vitalstream_m1", org: "vitalstream")

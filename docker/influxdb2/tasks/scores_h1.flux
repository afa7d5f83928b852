option task = {name: "vs_scores_h1", every: 1h}

news2_total = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "news2_total")
    |> aggregateWindow(every: 1h, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "news2_total")

news2_total_mean = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "news2_total_mean")
    |> aggregateWindow(every: 1h, fn: mean, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "news2_total_mean")

anomaly_combined = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "scores" and r._field == "anomaly_combined")
    |> aggregateWindow(every: 1h, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "anomaly_combined")

union(tables: [news2_total, news2_total_mean, anomaly_combined])
    |> to(bucket: "vitalstream_h1", org: "vitalstream")

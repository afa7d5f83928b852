option task = {name: "vs_alerts_m1", every: 1m}

level = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "alerts" and r._field == "level")
    |> aggregateWindow(every: 1m, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "level")

events = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "alerts" and r._field == "level")
    |> aggregateWindow(every: 1m, fn: count, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "events")

union(tables: [level, events])
    |> to(bucket: "vitalstream_m1", org: "vitalstream")

option task = {name: "vs_alerts_h1", every: 1h}

level = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "alerts" and r._field == "level")
    |> aggregateWindow(every: 1h, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "level")

events = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "alerts" and r._field == "events")
    |> aggregateWindow(every: 1h, fn: sum, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "events")

union(tables: [level, events])
    |> to(bucket: "vitalstream_h1", org: "vitalstream")

option task = {name: "vs_vitals_m1", every: 1m}

value = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: mean, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value")

value_min = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: min, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_min")

value_max = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_max")

value_count = from(bucket: "vitalstream")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: count, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_count")

union(tables: [value, value_min, value_max, value_count])
    |> to(bucket: "vitalstream_m1", org: "vitalstream")

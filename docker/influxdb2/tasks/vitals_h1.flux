option task = {name: "vs_vitals_h1", every: 1h}

value = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value")
    |> aggregateWindow(every: 1h, fn: mean, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value")

value_min = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value_min")
    |> aggregateWindow(every: 1h, fn: min, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_min")

value_max = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value_max")
    |> aggregateWindow(every: 1h, fn: max, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_max")

value_count = from(bucket: "vitalstream_m1")
    |> range(start: -2h)
    |> filter(fn: (r) => r._measurement == "vitals" and r._field == "value_count")
    |> aggregateWindow(every: 1h, fn: sum, createEmpty: false, timeSrc: "_start")
    |> set(key: "_field", value: "value_count")

union(tables: [value, value_min, value_max, value_count])
    |> to(bucket: "vitalstream_h1", org: "vitalstream")

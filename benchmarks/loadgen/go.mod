module vitalstream/benchmarks/loadgen

go 1.21

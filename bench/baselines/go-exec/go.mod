module parafork.dev/bench/go-exec

go 1.22

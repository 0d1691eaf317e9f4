// Go versions of the workloads. See bench/README.md.
//
// Usage: bench-go <workload> [n]
// Prints exactly one line "RESULT <number>". Exit 3 = workload not implemented.
// GOMAXPROCS is left at its default (number of CPUs).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	nGoroutines = 1_000_000 // spawn, memory
	nYields     = 1_000_000 // gosched, per goroutine (two goroutines)
)

// rssPteKB returns VmRSS + VmPTE of this process in kB.
func rssPteKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmPTE:") {
			fields := strings.Fields(line)
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				panic(err)
			}
			total += kb
		}
	}
	return total
}

func nsPer(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }

func spawn(n int) float64 {
	var wg sync.WaitGroup
	start := time.Now() // monotonic
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return nsPer(time.Since(start), n)
}

func gosched(n int) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return nsPer(time.Since(start), 2*n)
}

func memory(n int) float64 {
	var started, finished, gate sync.WaitGroup
	gate.Add(1)
	started.Add(n)
	finished.Add(n)
	before := rssPteKB()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			gate.Wait()
			finished.Done()
		}()
	}
	started.Wait()
	after := rssPteKB()
	gate.Done()
	finished.Wait()
	return float64(after-before) * 1024 / float64(n)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-go <workload> [n]")
		os.Exit(2)
	}
	n := -1
	if len(os.Args) > 2 {
		v, err := strconv.Atoi(strings.ReplaceAll(os.Args[2], "_", ""))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad n:", os.Args[2])
			os.Exit(2)
		}
		n = v
	}
	or := func(def int) int {
		if n < 0 {
			return def
		}
		return n
	}
	// main() already runs as a goroutine, like the other runtimes' bodies.
	var v float64
	switch w := os.Args[1]; w {
	case "spawn":
		v = spawn(or(nGoroutines))
	case "gosched":
		v = gosched(or(nYields))
	case "memory":
		v = memory(or(nGoroutines))
	default:
		fmt.Fprintln(os.Stderr, "workload not implemented:", w)
		os.Exit(3)
	}
	fmt.Printf("RESULT %.2f\n", v)
}

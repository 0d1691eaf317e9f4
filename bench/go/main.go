// Go versions of the workloads. See bench/README.md.
//
// Usage: bench-go <workload> [n]
// or:    bench-go serve-http <addr:port> (the http workloads: serves until killed)
// Prints exactly one line "RESULT <number>". Exit 3 = workload not implemented.
// GOMAXPROCS is left at its default (number of CPUs), except in hog (1).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	nGoroutines = 1_000_000  // spawn, memory
	nYields     = 1_000_000  // gosched, per goroutine (two goroutines)
	nRoundTrips = 1_000_000  // pingpong
	nLeaves     = 1_000_000  // skynet: leaves of the 10-ary tree (a power of 10)
	nHops       = 10_000_000 // threadring: token passes
	nRing       = 503        // threadring: goroutines in the ring
	nItems      = 10_000_000 // prodcons: items, all producers together
	nProducers  = 4          // prodcons
	nConsumers  = 4          // prodcons
	prodconsCap = 128        // prodcons: channel capacity

	hogSleep  = 20 * time.Millisecond // hog: each sleep ...
	hogSleeps = 50                    // ... this many times
	hogCap    = 3 * time.Second       // hog: the spinner stops after this long in any case

	httpBuf = 4096 // http: read buffer per connection; a larger request head closes it
)

// fail reports a wrong answer and exits non-zero, so the harness shows "fails".
func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wrong result: "+format+"\n", args...)
	os.Exit(1)
}

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

// pingpong: the main goroutine and an echo goroutine, two unbuffered channels;
// one round trip = send on ping, receive the answer on pong.
func pingpong(n int) float64 {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			fail("pingpong: sent %d, got back %d", i, v)
		}
	}
	elapsed := time.Since(start)
	close(ping)
	if _, ok := <-pong; ok {
		fail("pingpong: pong not closed")
	}
	return nsPer(elapsed, n)
}

// skynetNode: a leaf sends its number; an inner node starts 10 children, sums
// what they send on its own unbuffered channel and sends the sum up.
func skynetNode(up chan<- int64, num, size int64) {
	if size == 1 {
		up <- num
		return
	}
	c := make(chan int64)
	step := size / 10
	for i := int64(0); i < 10; i++ {
		go skynetNode(c, num+i*step, step)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-c
	}
	up <- sum
}

func skynet(leaves int) float64 {
	n := int64(leaves)
	for m := n; m != 1; m /= 10 {
		if m%10 != 0 || m == 0 {
			fmt.Fprintln(os.Stderr, "skynet: n must be a power of 10")
			os.Exit(2)
		}
	}
	start := time.Now()
	c := make(chan int64)
	go skynetNode(c, 0, n)
	sum := <-c
	elapsed := time.Since(start)
	if want := n * (n - 1) / 2; sum != want {
		fail("skynet: sum %d, want %d", sum, want)
	}
	return float64(elapsed.Nanoseconds()) / 1e6
}

// threadring: nRing goroutines; goroutine i receives on ring[i] and sends the
// token minus one on ring[i+1 mod nRing]. The one that receives 0 reports its
// index and closes its outgoing channel; every other goroutine closes its
// outgoing channel when its incoming one is closed, so all of them end.
func threadring(hops int) float64 {
	ring := make([]chan int, nRing)
	for i := range ring {
		ring[i] = make(chan int)
	}
	winner := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(nRing)
	for i := 0; i < nRing; i++ {
		go func(i int, in <-chan int, out chan<- int) {
			defer wg.Done()
			defer close(out)
			for t := range in {
				if t == 0 {
					winner <- i
					return
				}
				out <- t - 1
			}
		}(i, ring[i], ring[(i+1)%nRing])
	}
	start := time.Now()
	ring[0] <- hops
	w := <-winner
	elapsed := time.Since(start)
	wg.Wait()
	if want := hops % nRing; w != want {
		fail("threadring: goroutine %d got the last token, want %d", w, want)
	}
	return nsPer(elapsed, hops)
}

// prodcons: nProducers send the numbers 0..n-1 (producer p sends p, p+4, ...)
// into one channel of capacity prodconsCap; nConsumers sum what they receive.
// The channel is closed once every producer is done.
func prodcons(n int) float64 {
	ch := make(chan int64, prodconsCap)
	sums := make(chan int64, nConsumers)
	var producers sync.WaitGroup
	start := time.Now()
	for c := 0; c < nConsumers; c++ {
		go func() {
			var s int64
			for v := range ch {
				s += v
			}
			sums <- s
		}()
	}
	producers.Add(nProducers)
	for p := 0; p < nProducers; p++ {
		go func(p int) {
			for i := p; i < n; i += nProducers {
				ch <- int64(i)
			}
			producers.Done()
		}(p)
	}
	producers.Wait()
	close(ch)
	var total int64
	for c := 0; c < nConsumers; c++ {
		total += <-sums
	}
	elapsed := time.Since(start)
	if want := int64(n) * int64(n-1) / 2; total != want {
		fail("prodcons: total %d, want %d", total, want)
	}
	return nsPer(elapsed, n)
}

var httpResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!")
var headEnd = []byte("\r\n\r\n")

// httpConn: one goroutine per connection. Answers every complete request head (through
// \r\n\r\n) in the buffer, pipelined ones included, with one write; keeps the start of an
// incomplete one; closes on EOF or error. Requests are assumed to have no body (wrk sends
// GETs). Same logic as http_take_requests in common/common.rs.
func httpConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, httpBuf)
	out := make([]byte, 0, httpBuf)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if m == 0 || err != nil {
			return
		}
		n += m
		start := 0
		for {
			i := bytes.Index(buf[start:n], headEnd)
			if i < 0 {
				break
			}
			out = append(out, httpResponse...)
			start += i + len(headEnd)
		}
		if start > 0 {
			n = copy(buf, buf[start:n])
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		if n == len(buf) {
			return // a request head larger than the buffer
		}
	}
}

func serveHTTP(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			continue
		}
		// Go's default; set explicitly, as every program does.
		c.(*net.TCPConn).SetNoDelay(true)
		go httpConn(c)
	}
}

// hog: at GOMAXPROCS=1, one goroutine spins without calls (only an atomic load of the stop
// flag, which the compiler inlines) while main sleeps hogSleeps times for hogSleep; returns
// the worst lateness in ms. Go has no thread outside its scheduler, so the hogCap safety net
// is a runtime timer here (the Rust programs use a plain OS thread).
func hog() float64 {
	runtime.GOMAXPROCS(1)
	var stop int32
	done := make(chan uint64)
	time.AfterFunc(hogCap, func() { atomic.StoreInt32(&stop, 1) })
	go func() {
		var spins uint64
		for atomic.LoadInt32(&stop) == 0 {
			spins++
		}
		done <- spins
	}()
	var worst time.Duration
	for i := 0; i < hogSleeps; i++ {
		t0 := time.Now()
		time.Sleep(hogSleep)
		if late := time.Since(t0) - hogSleep; late > worst {
			worst = late
		}
	}
	atomic.StoreInt32(&stop, 1)
	if spins := <-done; spins == 0 {
		fail("hog: the spinner never ran")
	}
	return float64(worst.Nanoseconds()) / 1e6
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve-http" {
		serveHTTP(os.Args[2])
	}
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
	case "pingpong":
		v = pingpong(or(nRoundTrips))
	case "skynet":
		v = skynet(or(nLeaves))
	case "threadring":
		v = threadring(or(nHops))
	case "prodcons":
		v = prodcons(or(nItems))
	case "hog":
		v = hog()
	default:
		fmt.Fprintln(os.Stderr, "workload not implemented:", w)
		os.Exit(3)
	}
	fmt.Printf("RESULT %.2f\n", v)
}

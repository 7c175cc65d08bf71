// The Go clientv3 figure of scripts/bench: the same workloads and output
// protocol as bench/worker.py (BENCH-MEASURING, BENCH-READY, BENCH-RESULT json).
// Built in GOPATH mode against Debian's golang-etcd-server-dev (etcd 3.4 client).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func pct(s []int64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s)-1) + 0.5)
	return float64(s[i])
}

func emit(ops int, elapsed, cpu float64, lat []int64, extra map[string]interface{}) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := map[string]interface{}{
		"ops": ops, "elapsed_s": elapsed, "ops_per_s": float64(ops) / elapsed,
		"p50_us": pct(lat, 0.5) / 1000, "p99_us": pct(lat, 0.99) / 1000,
		"cpu_s": cpu, "cpu_us_per_op": 0.0, "cpu_pct_core": cpu / elapsed * 100,
	}
	if ops > 0 {
		r["cpu_us_per_op"] = cpu / float64(ops) * 1e6
	}
	for k, v := range extra {
		r[k] = v
	}
	b, _ := json.Marshal(r)
	fmt.Printf("BENCH-RESULT %s\n", b)
}

func main() {
	endpoint := flag.String("endpoint", "", "")
	workload := flag.String("workload", "", "")
	prefix := flag.String("prefix", "", "")
	conc := flag.Int("concurrency", 1, "")
	duration := flag.Float64("duration", 3, "")
	warmup := flag.Float64("warmup", 0.5, "")
	keys := flag.Int("keys", 64, "")
	events := flag.Int("events", 20000, "")
	leases := flag.Int("leases", 1000, "")
	ttl := flag.Int("ttl", 10, "")
	flag.String("impl", "go", "")
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer cli.Close()
	ctx := context.Background()
	value := string(make([]byte, 32))
	p := *prefix
	var op func(w, i int) error
	switch *workload {
	case "put":
		op = func(w, i int) error { _, err := cli.Put(ctx, fmt.Sprintf("%sk%03d", p, w), value); return err }
	case "get":
		op = func(w, i int) error {
			r, err := cli.Get(ctx, fmt.Sprintf("%sk%04d", p, (w+i)%*keys))
			if err == nil && len(r.Kvs) != 1 {
				err = fmt.Errorf("missing key")
			}
			return err
		}
	case "range":
		op = func(w, i int) error {
			r, err := cli.Get(ctx, p, clientv3.WithPrefix())
			if err == nil && len(r.Kvs) != *keys {
				err = fmt.Errorf("range returned %d keys", len(r.Kvs))
			}
			return err
		}
	case "txn":
		for t := 0; t < *conc; t++ {
			cli.Put(ctx, fmt.Sprintf("%sk%03d", p, t), "0")
		}
		op = func(w, i int) error {
			k := fmt.Sprintf("%sk%03d", p, w)
			r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(k), "=", strconv.Itoa(i))).
				Then(clientv3.OpPut(k, strconv.Itoa(i+1))).Commit()
			if err == nil && !r.Succeeded {
				err = fmt.Errorf("compare-and-swap failed")
			}
			return err
		}
	case "lock_reuse":
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
		if err != nil {
			panic(err)
		}
		defer s.Close()
		op = func(w, i int) error {
			m := concurrency.NewMutex(s, p)
			if err := m.Lock(ctx); err != nil {
				return err
			}
			return m.Unlock(ctx)
		}
	case "lock_new":
		op = func(w, i int) error {
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
			if err != nil {
				return err
			}
			m := concurrency.NewMutex(s, p)
			if err := m.Lock(ctx); err != nil {
				return err
			}
			if err := m.Unlock(ctx); err != nil {
				return err
			}
			return s.Close()
		}
	case "watch":
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wc := cli.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		<-wc // the creation notification
		cpu0 := cpuSeconds()
		fmt.Println("BENCH-READY")
		delays := make([]int64, 0, *events)
		var first, last time.Time
		for resp := range wc {
			for _, ev := range resp.Events {
				now := monotonicNs()
				if len(delays) == 0 {
					first = time.Now()
				}
				sent, _ := strconv.ParseInt(string(ev.Kv.Value), 10, 64)
				delays = append(delays, now-sent)
			}
			if len(delays) >= *events {
				break
			}
		}
		last = time.Now()
		emit(len(delays), last.Sub(first).Seconds(), cpuSeconds()-cpu0, delays,
			map[string]interface{}{"complete": len(delays) >= *events, "expected": *events, "impl": "go", "workload": "watch"})
		return
	case "leases":
		// clientv3's lessor: one shared stream, each lease renewed every TTL/3.
		var received int64
		sem := make(chan struct{}, 64)
		var gw sync.WaitGroup
		t0 := time.Now()
		for n := 0; n < *leases; n++ {
			gw.Add(1)
			sem <- struct{}{}
			go func() {
				defer gw.Done()
				defer func() { <-sem }()
				g, err := cli.Grant(ctx, int64(*ttl))
				if err != nil {
					panic(err)
				}
				ch, err := cli.KeepAlive(ctx, g.ID)
				if err != nil {
					panic(err)
				}
				go func() {
					for range ch {
						atomic.AddInt64(&received, 1)
					}
				}()
			}()
		}
		gw.Wait()
		grant := time.Since(t0).Seconds()
		time.Sleep(time.Duration((float64(*ttl)/3 + 0.5) * float64(time.Second)))
		fmt.Println("BENCH-MEASURING")
		window := *duration
		if window < float64(*ttl) {
			window = float64(*ttl)
		}
		r0, c0, w0 := atomic.LoadInt64(&received), cpuSeconds(), time.Now()
		time.Sleep(time.Duration(window * float64(time.Second)))
		r1, c1, elapsed := atomic.LoadInt64(&received), cpuSeconds(), time.Since(w0).Seconds()
		emit(int(r1-r0), elapsed, c1-c0, nil, map[string]interface{}{
			"leases": *leases, "ttl": *ttl, "grant_s": grant, "impl": "go", "workload": "leases"})
		return
	default:
		b, _ := json.Marshal(map[string]string{"unsupported": "go: " + *workload + " is not covered"})
		fmt.Printf("BENCH-RESULT %s\n", b)
		return
	}
	var stop, measuring int32
	var mu sync.Mutex
	lat := make([]int64, 0, 1<<16)
	var wg sync.WaitGroup
	var failure atomic.Value
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]int64, 0, 4096)
			for i := 0; atomic.LoadInt32(&stop) == 0; i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					failure.Store(err.Error())
					return
				}
				if atomic.LoadInt32(&measuring) == 1 {
					local = append(local, int64(time.Since(t0)))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	fmt.Println("BENCH-MEASURING")
	atomic.StoreInt32(&measuring, 1)
	c0, w0 := cpuSeconds(), time.Now()
	time.Sleep(time.Duration(*duration * float64(time.Second)))
	atomic.StoreInt32(&measuring, 0)
	c1, elapsed := cpuSeconds(), time.Since(w0).Seconds()
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	if f := failure.Load(); f != nil {
		fmt.Fprintln(os.Stderr, f)
		os.Exit(1)
	}
	emit(len(lat), elapsed, c1-c0, lat, map[string]interface{}{"concurrency": *conc, "impl": "go", "workload": *workload})
}

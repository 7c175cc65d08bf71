// A driver for Go's etcd recipes (go.etcd.io/etcd/contrib/recipes), so that
// tests can check that aetcd's contrib recipes and Go's work on the same keys.
//
//	recipes ENDPOINT
//
// Reads one command per line from stdin, "<id> <command> <args...>", runs each
// in a goroutine of its own (a blocking one, such as a Wait, does not hold up
// the next), and prints "<id> ok [<value>]" or "<id> err <message>" when it
// ends. Handles name the recipe objects across commands. Every recipe that
// needs a session shares one (TTL 10 s); EOF on stdin closes it and exits.
//
//	queue-enqueue NAME VALUE          queue-dequeue NAME           -> VALUE
//	pqueue-enqueue NAME VALUE PRIO    pqueue-dequeue NAME          -> VALUE
//	barrier-hold NAME                 barrier-release NAME         barrier-wait NAME
//	dbarrier-enter HANDLE NAME COUNT  dbarrier-leave HANDLE
//	rlock HANDLE NAME                 lock HANDLE NAME             unlock HANDLE
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	recipe "go.etcd.io/etcd/contrib/recipes"
)

type driver struct {
	client  *clientv3.Client
	session *concurrency.Session
	mu      sync.Mutex
	out     sync.Mutex
	rw      map[string]*recipe.RWMutex
	db      map[string]*recipe.DoubleBarrier
}

func (d *driver) reply(id, status, value string) {
	d.out.Lock()
	defer d.out.Unlock()
	fmt.Printf("%s %s %s\n", id, status, strings.ReplaceAll(value, "\n", " "))
}

func (d *driver) run(id string, args []string) (string, error) {
	need := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d arguments", args[0], n-1)
		}
		return nil
	}
	switch args[0] {
	case "queue-enqueue":
		if err := need(3); err != nil {
			return "", err
		}
		return "", recipe.NewQueue(d.client, args[1]).Enqueue(args[2])
	case "queue-dequeue":
		if err := need(2); err != nil {
			return "", err
		}
		return recipe.NewQueue(d.client, args[1]).Dequeue()
	case "pqueue-enqueue":
		if err := need(4); err != nil {
			return "", err
		}
		pr, err := strconv.ParseUint(args[3], 10, 16)
		if err != nil {
			return "", err
		}
		return "", recipe.NewPriorityQueue(d.client, args[1]).Enqueue(args[2], uint16(pr))
	case "pqueue-dequeue":
		if err := need(2); err != nil {
			return "", err
		}
		return recipe.NewPriorityQueue(d.client, args[1]).Dequeue()
	case "barrier-hold":
		if err := need(2); err != nil {
			return "", err
		}
		return "", recipe.NewBarrier(d.client, args[1]).Hold()
	case "barrier-release":
		if err := need(2); err != nil {
			return "", err
		}
		return "", recipe.NewBarrier(d.client, args[1]).Release()
	case "barrier-wait":
		if err := need(2); err != nil {
			return "", err
		}
		return "", recipe.NewBarrier(d.client, args[1]).Wait()
	case "dbarrier-enter":
		if err := need(4); err != nil {
			return "", err
		}
		count, err := strconv.Atoi(args[3])
		if err != nil {
			return "", err
		}
		b := recipe.NewDoubleBarrier(d.session, args[2], count)
		d.mu.Lock()
		d.db[args[1]] = b
		d.mu.Unlock()
		return "", b.Enter()
	case "dbarrier-leave":
		if err := need(2); err != nil {
			return "", err
		}
		d.mu.Lock()
		b := d.db[args[1]]
		d.mu.Unlock()
		if b == nil {
			return "", fmt.Errorf("no double barrier %q", args[1])
		}
		return "", b.Leave()
	case "rlock", "lock":
		if err := need(3); err != nil {
			return "", err
		}
		m := recipe.NewRWMutex(d.session, args[2])
		d.mu.Lock()
		d.rw[args[1]] = m
		d.mu.Unlock()
		var err error
		if args[0] == "rlock" {
			err = m.RLock()
		} else {
			err = m.Lock()
		}
		return "", err
	case "unlock":
		if err := need(2); err != nil {
			return "", err
		}
		d.mu.Lock()
		m := d.rw[args[1]]
		d.mu.Unlock()
		if m == nil {
			return "", fmt.Errorf("no lock %q", args[1])
		}
		return "", m.Unlock() // RUnlock and Unlock both delete the holder's key
	}
	return "", fmt.Errorf("unknown command %q", args[0])
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: recipes ENDPOINT")
		os.Exit(2)
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{os.Args[1]},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	session, err := concurrency.NewSession(client, concurrency.WithTTL(10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer session.Close()
	d := &driver{
		client:  client,
		session: session,
		rw:      map[string]*recipe.RWMutex{},
		db:      map[string]*recipe.DoubleBarrier{},
	}
	fmt.Println("ready")
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 2 {
			continue
		}
		id, args := fields[0], fields[1:]
		go func() {
			value, err := d.run(id, args)
			if err != nil {
				d.reply(id, "err", err.Error())
			} else {
				d.reply(id, "ok", value)
			}
		}()
	}
	// EOF: the deferred Close calls revoke the session's lease; commands
	// still blocked end with the process.
}

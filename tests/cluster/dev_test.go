package cluster_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// devRun is one `tandem dev` process.
type devRun struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

func startDev(t *testing.T, args ...string) *devRun {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), append([]string{"dev"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devRun{cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return d
}

// waitFor reads output lines until one contains want; it returns them all.
func (d *devRun) waitFor(t *testing.T, want string, timeout time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("tandem dev exited before printing %q; output:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("tandem dev did not print %q within %v; output:\n%s", want, timeout, strings.Join(seen, "\n"))
		}
	}
}

// interrupt sends Ctrl-C and waits for a clean exit.
func (d *devRun) interrupt(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGINT)
	for range d.lines {
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("tandem dev exited with %v after Ctrl-C; want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tandem dev did not exit within 30s of Ctrl-C")
	}
}

func httpJSON(t *testing.T, hc *http.Client, method, url, body string, out any) int {
	t.Helper()
	return httpJSONAs(t, hc, "", method, url, body, out)
}

// httpJSONAs is httpJSON with an Authorization header ("" for none).
func httpJSONAs(t *testing.T, hc *http.Client, authz, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// TestDevCluster is the README's first command: `tandem dev` starts a
// cluster of separate processes with the example application, stops every
// node on Ctrl-C, and comes back with its data on the next run.
func TestDevCluster(t *testing.T) {
	// dev numbers its nodes' ports up from each base.
	ports := harness.FreePorts(t, 6)
	httpBase, raftBase := ports[0], ports[3]
	data := filepath.Join(t.TempDir(), "dev")
	args := []string{"--data", data, "--nodes", "3", "--http-port", fmt.Sprint(httpBase), "--raft-port", fmt.Sprint(raftBase)}

	d := startDev(t, args...)
	out := d.waitFor(t, "Press Ctrl-C", 90*time.Second)
	text := strings.Join(out, "\n")
	for i := 0; i < 3; i++ {
		if want := fmt.Sprintf("https://127.0.0.1:%d", httpBase+i); !strings.Contains(text, want) {
			t.Fatalf("dev output does not list node address %s:\n%s", want, text)
		}
	}
	if !strings.Contains(text, data) || !strings.Contains(text, "Example application loaded") {
		t.Fatalf("dev output should name the data folder and the example:\n%s", text)
	}
	base := func(i int) string { return fmt.Sprintf("https://127.0.0.1:%d", httpBase+i) }
	// The curl examples trust the CA whose path dev prints.
	hc := devClient(t, text)
	if !strings.Contains(text, "curl -s --cacert ") {
		t.Fatalf("dev output should show curl with --cacert:\n%s", text)
	}

	// dev is secure: it prints the admin credentials it keeps in the data
	// folder, and the API refuses requests without them.
	pwb, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pwb))
	if !strings.Contains(text, "password "+password) {
		t.Fatalf("dev output should print the admin credentials:\n%s", text)
	}
	if code := httpJSON(t, hc, "GET", base(0)+"/v1/cluster", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("request without credentials: %d, want 401", code)
	}
	authz := client.BasicAuthorization("admin", password)
	httpJSON := func(t *testing.T, hc *http.Client, method, url, body string, out any) int {
		t.Helper()
		return httpJSONAs(t, hc, authz, method, url, body, out)
	}

	// Every node is its own process, and the cluster has three members.
	var cluster struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if code := httpJSON(t, hc, "GET", base(0)+"/v1/cluster", "", &cluster); code != 200 || len(cluster.Nodes) != 3 {
		t.Fatalf("cluster: %d %+v", code, cluster)
	}
	// The example application answers, and a write through the last node
	// is readable on the first.
	var q struct {
		Records []map[string]any `json:"records"`
	}
	if code := httpJSON(t, hc, "GET", base(0)+"/v1/tables/accounts/records?sort=-balance&limit=1", "", &q); code != 200 || len(q.Records) != 1 || q.Records[0]["id"] != "carol" {
		t.Fatalf("example query: %d %+v", code, q.Records)
	}
	if code := httpJSON(t, hc, "PUT", base(2)+"/v1/tables/accounts/records/zoe", `{"owner":"Zoe","balance":42}`, nil); code != 200 {
		t.Fatalf("write through node 3: %d", code)
	}
	d.interrupt(t)
	// Ctrl-C stopped every node, not only the dev process.
	for i := 0; i < 3; i++ {
		if resp, err := hc.Get(base(i) + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatalf("node %d still answers after Ctrl-C", i+1)
		}
	}

	// Same --data: the cluster comes back with its data and does not load
	// the example again.
	d = startDev(t, args...)
	out = d.waitFor(t, "Ready.", 90*time.Second)
	if text := strings.Join(out, "\n"); strings.Contains(text, "Example application loaded") || !strings.Contains(text, "password "+password) {
		t.Fatalf("second run loaded the example again, or did not print the same admin password:\n%s", text)
	}
	var rec map[string]any
	if code := httpJSON(t, hc, "GET", base(1)+"/v1/tables/accounts/records/zoe", "", &rec); code != 200 || rec["owner"] != "Zoe" {
		t.Fatalf("after restart, zoe: %d %+v", code, rec)
	}
	var count struct {
		Count int `json:"count"`
	}
	if code := httpJSON(t, hc, "GET", base(0)+"/v1/tables/accounts/records?count=true", "", &count); code != 200 || count.Count != 5 {
		t.Fatalf("after restart, %d accounts (status %d); want the 4 examples plus zoe", count.Count, code)
	}
	d.interrupt(t)
}

// devClient returns an HTTP client trusting the CA whose path dev printed
// ("CA certificate: PATH").
func devClient(t *testing.T, out string) *http.Client {
	t.Helper()
	_, rest, ok := strings.Cut(out, "CA certificate: ")
	if !ok {
		t.Fatalf("dev output names no CA certificate:\n%s", out)
	}
	path, _, _ := strings.Cut(rest, "\n")
	pool, err := client.LoadCAFile(strings.TrimSpace(path))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestDevInsecure: `tandem dev --insecure` says loudly that it is
// insecure and serves plain HTTP.
func TestDevInsecure(t *testing.T) {
	ports := harness.FreePorts(t, 2)
	data := filepath.Join(t.TempDir(), "dev")
	d := startDev(t, "--data", data, "--nodes", "1", "--insecure", "--example=false",
		"--http-port", fmt.Sprint(ports[0]), "--raft-port", fmt.Sprint(ports[1]))
	text := strings.Join(d.waitFor(t, "Press Ctrl-C", 60*time.Second), "\n")
	if !strings.Contains(text, "INSECURE") || strings.Contains(text, "--cacert") {
		t.Fatalf("insecure dev output should warn and show plain curl:\n%s", text)
	}
	if code := httpJSON(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/v1/cluster", ports[0]), "", nil); code != 200 {
		t.Fatalf("plain HTTP: %d", code)
	}
	d.interrupt(t)
}

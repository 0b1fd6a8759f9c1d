package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var contracts = struct {
	mu    sync.Mutex
	built map[string][]byte
}{built: map[string][]byte{}}

// Contract builds the contract package pkg (relative to the module root,
// e.g. "examples/token") into a WebAssembly module, as `tandem contract
// build` does (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared), and
// returns its bytes. Each package is built once per test binary.
func Contract(t testing.TB, pkg string) []byte {
	t.Helper()
	contracts.mu.Lock()
	defer contracts.mu.Unlock()
	if b, ok := contracts.built[pkg]; ok {
		return b
	}
	b, err := buildContract(pkg)
	if err != nil {
		t.Fatalf("building contract %s: %v", pkg, err)
	}
	contracts.built[pkg] = b
	return b
}

func buildContract(pkg string) ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tandem-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, filepath.Base(pkg)+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

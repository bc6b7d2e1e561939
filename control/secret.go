package control

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/saasgate/saasgate/control/token"
)

// LoadOrCreateSecret reads dir/jwt_secret, creating it (mode 0600, 64 random hex bytes) the
// first time, so tokens stay valid across restarts without configuration.
func LoadOrCreateSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "jwt_secret")
	data, err := readPrivateFile(path)
	if err == nil {
		secret := []byte(strings.TrimSpace(string(data)))
		if len(secret) < token.MinSecretLen {
			return nil, fmt.Errorf("%s holds a secret shorter than %d bytes", path, token.MinSecretLen)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateSecret(dir) // another process won the race
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(secret, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	return secret, f.Close()
}

// readPrivateFile reads a file that only its owner may read. As ssh does with keys, a secret
// that group or others can read is refused rather than used: it may have been copied already.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by group or others (mode %#o): make it 0600, and replace the secret if others may have read it", path, mode)
	}
	return io.ReadAll(f)
}

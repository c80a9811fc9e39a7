package core

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// duidFile is where the server DUID is kept in the state directory.
const duidFile = "server-duid"

// duidEpoch is DUID-LLT's time origin (RFC 8415 §11.2).
var duidEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// LoadOrCreateDUID returns the server DUID kept in stateDir, generating a
// DUID-LLT (hardware type Ethernet, the first interface's MAC, or a random
// locally administered one) the first time and keeping it for good.
func LoadOrCreateDUID(stateDir string) ([]byte, error) {
	path := filepath.Join(stateDir, duidFile)
	if b, err := os.ReadFile(path); err == nil {
		d, err := hex.DecodeString(strings.TrimSpace(strings.ReplaceAll(string(b), ":", "")))
		if err != nil || len(d) < 3 || len(d) > 130 {
			return nil, fmt.Errorf("server DUID in %s is not valid hex", path)
		}
		return d, nil
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading server DUID: %w", err)
	}
	d := newDUIDLLT(time.Now(), firstMAC())
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(d)+"\n"), 0o640); err != nil {
		return nil, fmt.Errorf("writing server DUID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("writing server DUID: %w", err)
	}
	return d, nil
}

func newDUIDLLT(now time.Time, mac net.HardwareAddr) []byte {
	d := make([]byte, 8, 8+len(mac))
	binary.BigEndian.PutUint16(d[0:], 1) // DUID-LLT
	binary.BigEndian.PutUint16(d[2:], 1) // Ethernet
	binary.BigEndian.PutUint32(d[4:], uint32(now.Sub(duidEpoch)/time.Second))
	return append(d, mac...)
}

func firstMAC() net.HardwareAddr {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 && i.Flags&net.FlagLoopback == 0 {
			return i.HardwareAddr
		}
	}
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = (mac[0] | 0x02) &^ 0x01 // locally administered, unicast
	return mac
}

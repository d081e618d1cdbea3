package testserver

import (
	"fmt"

	"github.com/redisleak/redisleak/internal/clientlist"
)

// ClientInfo is one connection as reported by CLIENT LIST; see
// clientlist.Client.
type ClientInfo = clientlist.Client

// ParseClientList parses the reply of CLIENT LIST; see clientlist.Parse.
func ParseClientList(text string) ([]ClientInfo, error) {
	clients, err := clientlist.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	return clients, nil
}

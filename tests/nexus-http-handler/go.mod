module durin.dev/tests/nexus-http-handler

go 1.23

// The last Nexus Go SDK with its HTTP handler and completion client (later versions keep the
// protocol's types only): a real Nexus handler reached over HTTP, as an external endpoint.
require github.com/nexus-rpc/sdk-go v0.4.0

require github.com/google/uuid v1.3.0 // indirect

// A Nexus handler served over HTTP with the Nexus Go SDK, for Durin's tests of external
// endpoints. Service "ledger":
//   - "echo" (sync): returns its input; "refuse" fails with BAD_REQUEST; "boom" fails the
//     operation.
//   - "later" (async): starts, then completes through the caller's callback URL with
//     "later: <input>" (or, for input "doomed", as failed).
//   - "wait" (async): starts and waits; a cancel request completes it as canceled.
//
// Under /callbacks/ it also receives completions (a caller's side): it prints a line
// "completion <path> <state> <token> <result or error>" for each.
//
// It is also a Nexus caller over HTTP (the Nexus Go SDK's client), printing one JSON line
// with the outcome:
//
//	nexus-http-handler start <base URL> <service> <operation> <input> [callback URL]
//	nexus-http-handler cancel <base URL> <service> <operation> <token>
//
// Usage: nexus-http-handler <listen address>; prints "listening on <address>".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
)

// The callbacks of operations waiting for a cancel, by token.
var waiting sync.Map

type callback struct {
	url    string
	header nexus.Header
}

func send(cb callback, build func() (nexus.OperationCompletion, error)) {
	// Delivered until the caller's server takes it (2xx) or refuses it for good (4xx), with
	// backoff, as Temporal delivers callbacks. Each try builds the completion afresh (its body
	// is a reader).
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		c, err := build()
		if err != nil {
			log.Printf("completion: %v", err)
			return
		}
		// The callback's headers go back with the completion (Durin's token among them).
		header := nexus.Header{}
		for k, v := range cb.header {
			header.Set(k, v)
		}
		switch c := c.(type) {
		case *nexus.OperationCompletionSuccessful:
			c.Header = header
		case *nexus.OperationCompletionUnsuccessful:
			c.Header = header
		}
		req, err := nexus.NewCompletionHTTPRequest(context.Background(), cb.url, c)
		if err != nil {
			log.Printf("completion request: %v", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			log.Printf("completion delivered: %s %s", resp.Status, body)
			if resp.StatusCode < 500 {
				return
			}
		} else {
			log.Printf("completion delivery: %v", err)
		}
		time.Sleep(wait)
	}
}

type laterOp struct {
	nexus.UnimplementedOperation[string, string]
}

func (*laterOp) Name() string { return "later" }

func (*laterOp) Start(ctx context.Context, in string, o nexus.StartOperationOptions) (nexus.HandlerStartOperationResult[string], error) {
	token := "later-" + o.RequestID
	cb := callback{url: o.CallbackURL, header: o.CallbackHeader}
	go func() {
		time.Sleep(200 * time.Millisecond)
		send(cb, func() (nexus.OperationCompletion, error) {
			if in == "doomed" {
				return nexus.NewOperationCompletionUnsuccessful(
					nexus.NewOperationFailedError("the ledger is closed"),
					nexus.OperationCompletionUnsuccessfulOptions{OperationToken: token})
			}
			return nexus.NewOperationCompletionSuccessful("later: "+in,
				nexus.OperationCompletionSuccessfulOptions{OperationToken: token, StartTime: time.Now()})
		})
	}()
	return &nexus.HandlerStartOperationResultAsync{OperationToken: token}, nil
}

type waitOp struct {
	nexus.UnimplementedOperation[string, string]
}

func (*waitOp) Name() string { return "wait" }

func (*waitOp) Start(ctx context.Context, in string, o nexus.StartOperationOptions) (nexus.HandlerStartOperationResult[string], error) {
	token := "wait-" + o.RequestID
	waiting.Store(token, callback{url: o.CallbackURL, header: o.CallbackHeader})
	return &nexus.HandlerStartOperationResultAsync{OperationToken: token}, nil
}

func (*waitOp) Cancel(ctx context.Context, token string, o nexus.CancelOperationOptions) error {
	v, ok := waiting.LoadAndDelete(token)
	if !ok {
		return nexus.HandlerErrorf(nexus.HandlerErrorTypeNotFound, "no operation %s", token)
	}
	go send(v.(callback), func() (nexus.OperationCompletion, error) {
		return nexus.NewOperationCompletionUnsuccessful(
			nexus.NewOperationCanceledError("canceled by the caller"),
			nexus.OperationCompletionUnsuccessfulOptions{OperationToken: token})
	})
	return nil
}

type completions struct{}

func (completions) CompleteOperation(ctx context.Context, r *nexus.CompletionRequest) error {
	outcome := ""
	if r.Result != nil {
		var v any
		if err := r.Result.Consume(&v); err != nil {
			return err
		}
		outcome = fmt.Sprint(v)
	} else if r.Error != nil {
		outcome = r.Error.Error()
	}
	fmt.Printf("completion %s %s %s %s\n", r.HTTPRequest.URL.Path, r.State, r.OperationToken, outcome)
	return nil
}

// call runs one client call and prints its outcome as JSON.
func call(args []string) {
	client, err := nexus.NewHTTPClient(nexus.HTTPClientOptions{BaseURL: args[1], Service: args[2]})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]any{}
	if args[0] == "cancel" {
		handle, err := client.NewHandle(args[3], args[4])
		if err == nil {
			err = handle.Cancel(ctx, nexus.CancelOperationOptions{})
		}
		out["outcome"] = "cancel-requested"
		describe(out, err)
	} else {
		options := nexus.StartOperationOptions{RequestID: "req-" + args[4], Header: nexus.Header{"x-team": "payments"}}
		if len(args) > 5 {
			options.CallbackURL = args[5]
		}
		result, err := client.StartOperation(ctx, args[3], args[4], options)
		switch {
		case err != nil:
		case result.Successful != nil:
			var value string
			err = result.Successful.Consume(&value)
			out["outcome"], out["result"] = "sync", value
		default:
			out["outcome"], out["token"] = "async", result.Pending.Token
		}
		if err == nil {
			out["links"] = len(result.Links)
		}
		describe(out, err)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

// describe records what an error says: the operation's state, or the handler error's type.
func describe(out map[string]any, err error) {
	var opErr *nexus.OperationError
	var handlerErr *nexus.HandlerError
	switch {
	case err == nil:
		return
	case errors.As(err, &opErr):
		out["outcome"], out["message"] = string(opErr.State), opErr.Cause.Error()
	case errors.As(err, &handlerErr):
		out["outcome"], out["type"] = "handler-error", string(handlerErr.Type)
		out["message"] = handlerErr.Error()
	default:
		out["outcome"], out["message"] = "error", err.Error()
	}
}

func main() {
	if len(os.Args) > 4 && (os.Args[1] == "start" || os.Args[1] == "cancel") {
		call(os.Args[1:])
		return
	}
	svc := nexus.NewService("ledger")
	svc.MustRegister(
		nexus.NewSyncOperation("echo", func(ctx context.Context, in string, o nexus.StartOperationOptions) (string, error) {
			return in, nil
		}),
		nexus.NewSyncOperation("refuse", func(ctx context.Context, in string, o nexus.StartOperationOptions) (string, error) {
			return "", nexus.HandlerErrorf(nexus.HandlerErrorTypeBadRequest, "refused: %s", in)
		}),
		nexus.NewSyncOperation("boom", func(ctx context.Context, in string, o nexus.StartOperationOptions) (string, error) {
			return "", nexus.NewOperationFailedError("boom: " + in)
		}),
		&laterOp{}, &waitOp{},
	)
	reg := nexus.NewServiceRegistry()
	if err := reg.Register(svc); err != nil {
		log.Fatal(err)
	}
	handler, err := reg.NewHandler()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/callbacks/", nexus.NewCompletionHTTPHandler(nexus.CompletionHandlerOptions{Handler: completions{}}))
	mux.Handle("/", nexus.NewHTTPHandler(nexus.HandlerOptions{Handler: handler}))
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

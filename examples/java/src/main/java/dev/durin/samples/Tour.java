// A tour of Durin with the official Temporal Java SDK (io.temporal:temporal-sdk), used unchanged.
//
// One worker and one client in a single program: a workflow that calls an activity, sleeps on a
// durable timer, answers a query, accepts (and validates) an update, waits for a signal and runs a
// child workflow; then a schedule that starts the child workflow on its own. It prints what
// happened and exits 0, or exits 1 with the reason.
//
//   mvn -q compile exec:java   # against TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE
package dev.durin.samples;

import io.temporal.activity.ActivityInterface;
import io.temporal.activity.ActivityOptions;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.client.schedules.Schedule;
import io.temporal.client.schedules.ScheduleActionExecutionStartWorkflow;
import io.temporal.client.schedules.ScheduleActionResult;
import io.temporal.client.schedules.ScheduleActionStartWorkflow;
import io.temporal.client.schedules.ScheduleClient;
import io.temporal.client.schedules.ScheduleHandle;
import io.temporal.client.schedules.ScheduleIntervalSpec;
import io.temporal.client.schedules.ScheduleOptions;
import io.temporal.client.schedules.ScheduleSpec;
import io.temporal.common.RetryOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.UpdateMethod;
import io.temporal.workflow.UpdateValidatorMethod;
import io.temporal.workflow.Workflow;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

public final class Tour {
  /** The tour workflow's input. */
  public static final class Order {
    public String customer;
    public List<String> items = new ArrayList<>();

    public Order() {}

    Order(String customer, List<String> items) {
      this.customer = customer;
      this.items = new ArrayList<>(items);
    }
  }

  @ActivityInterface
  public interface Greetings {
    String greet(String name);
  }

  /** The activity: ordinary Java code, retried by the server's retry policy. */
  public static final class GreetingsImpl implements Greetings {
    @Override
    public String greet(String name) {
      return "Hello, " + name + "!";
    }
  }

  @WorkflowInterface
  public interface PackWorkflow {
    @WorkflowMethod(name = "Pack")
    String pack(List<String> items);
  }

  /** The child workflow: it counts the items it was given. */
  public static final class PackWorkflowImpl implements PackWorkflow {
    @Override
    public String pack(List<String> items) {
      return "packed " + items.size() + " items";
    }
  }

  @WorkflowInterface
  public interface OrderWorkflow {
    @WorkflowMethod(name = "OrderWorkflow")
    String run(Order order);

    @QueryMethod(name = "stage")
    String stage();

    @SignalMethod(name = "approve")
    void approve(String approver);

    @UpdateMethod(name = "add-item")
    int addItem(String item);

    @UpdateValidatorMethod(updateName = "add-item")
    void validateItem(String item);
  }

  /** The tour workflow walks through every feature the sample shows. */
  public static final class OrderWorkflowImpl implements OrderWorkflow {
    private final Greetings greetings =
        Workflow.newActivityStub(
            Greetings.class,
            ActivityOptions.newBuilder()
                .setStartToCloseTimeout(Duration.ofSeconds(10))
                .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(3).build())
                .build());
    private String stage = "started";
    private String approver;
    private Order order;

    @Override
    public String run(Order order) {
      this.order = order;
      String greeting = greetings.greet(order.customer);
      stage = "greeted";
      Workflow.sleep(Duration.ofSeconds(1));
      stage = "waiting for approval";
      Workflow.await(() -> approver != null);
      stage = "approved by " + approver;
      String packed = Workflow.newChildWorkflowStub(PackWorkflow.class).pack(order.items);
      stage = "done";
      return greeting + " " + packed + ", approved by " + approver;
    }

    @Override
    public String stage() {
      return stage;
    }

    @Override
    public void approve(String approver) {
      this.approver = approver;
    }

    @Override
    public int addItem(String item) {
      order.items.add(item);
      return order.items.size();
    }

    // The validator rejects empty names before anything is recorded.
    @Override
    public void validateItem(String item) {
      if (item.trim().isEmpty()) {
        throw new IllegalArgumentException("an item needs a name");
      }
    }
  }

  public static void main(String[] args) {
    int code = 0;
    try {
      run();
      System.out.println("java sample: all steps passed");
    } catch (Throwable e) {
      System.err.println("java sample FAILED: " + e);
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  private static void run() throws InterruptedException {
    String address = envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233").replaceFirst("^https?://", "");
    String namespace = envOr("TEMPORAL_NAMESPACE", "default");
    WorkflowServiceStubs service =
        WorkflowServiceStubs.newServiceStubs(
            WorkflowServiceStubsOptions.newBuilder().setTarget(address).build());
    WorkflowClient client =
        WorkflowClient.newInstance(
            service, WorkflowClientOptions.newBuilder().setNamespace(namespace).build());
    String suffix = Long.toString(System.nanoTime());
    String taskQueue = "java-tour-" + suffix;
    WorkerFactory factory = WorkerFactory.newInstance(client);
    Worker worker = factory.newWorker(taskQueue);
    worker.registerWorkflowImplementationTypes(OrderWorkflowImpl.class, PackWorkflowImpl.class);
    worker.registerActivitiesImplementations(new GreetingsImpl());
    factory.start();
    try {
      tourWorkflow(client, taskQueue, "order-" + suffix);
      tourSchedule(service, namespace, client, taskQueue, "schedule-" + suffix);
    } finally {
      factory.shutdownNow();
      service.shutdownNow();
    }
  }

  private static void tourWorkflow(WorkflowClient client, String taskQueue, String id)
      throws InterruptedException {
    OrderWorkflow order =
        client.newWorkflowStub(
            OrderWorkflow.class,
            WorkflowOptions.newBuilder().setWorkflowId(id).setTaskQueue(taskQueue).build());
    var execution = WorkflowClient.start(order::run, new Order("Ada", List.of("tea")));
    System.out.println(
        "started workflow " + execution.getWorkflowId() + " (run " + execution.getRunId() + ")");

    waitForStage(order, "waiting for approval");
    System.out.println("query: the activity ran and the timer fired");

    int count = order.addItem("scones");
    check(count == 2, "update returned " + count + " items, want 2");
    try {
      order.addItem(" ");
      throw new IllegalStateException("an empty item must be rejected by the validator");
    } catch (WorkflowUpdateException rejected) {
      String reason = String.valueOf(rejected.getCause());
      check(reason.contains("an item needs a name"), "unexpected rejection: " + reason);
    }
    System.out.println("update: accepted one item (2 in all), the validator rejected an empty one");

    order.approve("Grace");
    String result = WorkflowStub.fromTyped(order).getResult(String.class);
    String want = "Hello, Ada! packed 2 items, approved by Grace";
    check(want.equals(result), "workflow returned \"" + result + "\", want \"" + want + "\"");
    System.out.println("signal + child workflow: result \"" + result + "\"");

    WorkflowExecutionStatus status =
        WorkflowStub.fromTyped(order).describe().getStatus();
    check(
        status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
        "describe says " + status + ", want COMPLETED");
  }

  private static void waitForStage(OrderWorkflow order, String want) throws InterruptedException {
    String stage = "";
    for (int i = 0; i < 600; i++) {
      stage = order.stage();
      if (want.equals(stage)) {
        return;
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(
        "the workflow stayed at stage \"" + stage + "\", want \"" + want + "\"");
  }

  private static void tourSchedule(
      WorkflowServiceStubs service,
      String namespace,
      WorkflowClient client,
      String taskQueue,
      String id)
      throws InterruptedException {
    ScheduleClient schedules =
        ScheduleClient.newInstance(
            service,
            io.temporal.client.schedules.ScheduleClientOptions.newBuilder()
                .setNamespace(namespace)
                .build());
    Schedule schedule =
        Schedule.newBuilder()
            .setAction(
                ScheduleActionStartWorkflow.newBuilder()
                    .setWorkflowType(PackWorkflow.class)
                    .setArguments(List.of("jam"))
                    .setOptions(
                        WorkflowOptions.newBuilder()
                            .setWorkflowId(id + "-pack")
                            .setTaskQueue(taskQueue)
                            .build())
                    .build())
            .setSpec(
                ScheduleSpec.newBuilder()
                    .setIntervals(List.of(new ScheduleIntervalSpec(Duration.ofHours(1))))
                    .build())
            .build();
    ScheduleHandle handle =
        schedules.createSchedule(id, schedule, ScheduleOptions.newBuilder().build());
    try {
      // The interval is an hour; trigger runs the action now.
      handle.trigger();
      for (int i = 0; i < 600; i++) {
        List<ScheduleActionResult> recent = handle.describe().getInfo().getRecentActions();
        if (!recent.isEmpty()) {
          var started = (ScheduleActionExecutionStartWorkflow) recent.get(0).getAction();
          String result =
              client
                  .newUntypedWorkflowStub(
                      started.getWorkflowId(),
                      java.util.Optional.of(started.getFirstExecutionRunId()),
                      java.util.Optional.empty())
                  .getResult(String.class);
          check(
              "packed 1 items".equals(result), "scheduled run returned \"" + result + "\"");
          System.out.println(
              "schedule: triggered run "
                  + started.getWorkflowId()
                  + " returned \""
                  + result
                  + "\"");
          return;
        }
        Thread.sleep(100);
      }
      throw new IllegalStateException("the triggered schedule never started its workflow");
    } finally {
      handle.delete();
    }
  }

  private static void check(boolean condition, String message) {
    if (!condition) {
      throw new IllegalStateException(message);
    }
  }

  private static String envOr(String name, String fallback) {
    String value = System.getenv(name);
    return value == null || value.isEmpty() ? fallback : value;
  }
}

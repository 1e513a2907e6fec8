// A tour of Durin with the official Temporal TypeScript SDK (@temporalio/*), used unchanged.
//
// One worker and one client in a single program: a workflow that calls an activity, sleeps on a
// durable timer, answers a query, accepts (and validates) an update, waits for a signal and runs a
// child workflow; then a schedule that starts the child workflow on its own. It prints what
// happened and exits 0, or exits 1 with the reason.
//
//   npm run build && npm start   # against TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE
import { Client, Connection, ScheduleHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import * as activities from './activities';
import { addItemUpdate, approveSignal, orderWorkflow, pack, stageQuery } from './workflows';

const address = (process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233').replace(/^https?:\/\//, '');
const namespace = process.env.TEMPORAL_NAMESPACE || 'default';

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function main(): Promise<void> {
  const suffix = `${Date.now()}`;
  const taskQueue = `ts-tour-${suffix}`;
  const workerConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: workerConnection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('./workflows'),
    activities,
  });
  const client = new Client({ connection: await Connection.connect({ address }), namespace });
  try {
    await worker.runUntil(async () => {
      await tourWorkflow(client, taskQueue, `order-${suffix}`);
      await tourSchedule(client, taskQueue, `schedule-${suffix}`);
    });
  } finally {
    await client.connection.close();
    await workerConnection.close();
  }
  console.log('typescript sample: all steps passed');
}

async function tourWorkflow(client: Client, taskQueue: string, workflowId: string): Promise<void> {
  const handle = await client.workflow.start(orderWorkflow, {
    workflowId,
    taskQueue,
    args: [{ customer: 'Ada', items: ['tea'] }],
  });
  console.log(`started workflow ${handle.workflowId} (run ${handle.firstExecutionRunId})`);

  await waitForStage(() => handle.query(stageQuery), 'waiting for approval');
  console.log('query: the activity ran and the timer fired');

  const count = await handle.executeUpdate(addItemUpdate, { args: ['scones'] });
  check(count === 2, `update returned ${count} items, want 2`);
  try {
    await handle.executeUpdate(addItemUpdate, { args: [' '] });
    throw new Error('an empty item must be rejected by the validator');
  } catch (err) {
    check(
      err instanceof WorkflowUpdateFailedError && String(err.cause?.message).includes('an item needs a name'),
      `the validator's rejection was expected, got ${err}`,
    );
  }
  console.log('update: accepted one item (2 in all), the validator rejected an empty one');

  await handle.signal(approveSignal, 'Grace');
  const result = await handle.result();
  const want = 'Hello, Ada! packed 2 items, approved by Grace';
  check(result === want, `workflow returned "${result}", want "${want}"`);
  console.log(`signal + child workflow: result "${result}"`);

  const description = await handle.describe();
  check(description.status.name === 'COMPLETED', `describe says ${description.status.name}, want COMPLETED`);
}

async function waitForStage(query: () => Promise<string>, want: string): Promise<void> {
  let stage = '';
  for (let i = 0; i < 600; i++) {
    stage = await query();
    if (stage === want) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the workflow stayed at stage "${stage}", want "${want}"`);
}

async function tourSchedule(client: Client, taskQueue: string, scheduleId: string): Promise<void> {
  const schedule: ScheduleHandle = await client.schedule.create({
    scheduleId,
    spec: { intervals: [{ every: '1 hour' }] },
    action: { type: 'startWorkflow', workflowType: pack, workflowId: `${scheduleId}-pack`, taskQueue, args: [['jam']] },
  });
  try {
    // The interval is an hour; trigger runs the action now.
    await schedule.trigger();
    for (let i = 0; i < 600; i++) {
      const description = await schedule.describe();
      const recent = description.info.recentActions;
      if (recent.length > 0) {
        const started = recent[0].action;
        const result = await client.workflow.getHandle(started.workflow.workflowId, started.workflow.firstExecutionRunId).result();
        check(result === 'packed 1 items', `scheduled run returned "${result}"`);
        console.log(`schedule: triggered run ${started.workflow.workflowId} returned "${result}"`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the triggered schedule never started its workflow');
  } finally {
    await schedule.delete();
  }
}

main().catch((err) => {
  console.error('typescript sample FAILED:', err);
  process.exit(1);
});

import { describe, expect, it } from 'vitest';
import { fetchPayloadOf, parseStackOutputs, queuesFromOutputs } from '../../local/dlq.ts';

describe("a stack's outputs for the dlq command", () => {
  const outputs = {
    StageQueueUrl: 'https://q/stage',
    StageDeadLetterQueueUrl: 'https://q/stage-dlq',
    StageDeadLetterQueueArn: 'arn:aws:sqs:eu-west-1:1:stage-dlq',
    FetchDeadLetterQueueUrl: 'https://q/fetch-dlq',
    FetchFunctionName: 'fetch-fn',
  };

  it('reads cdk deploy --outputs-file, describe-stacks and its Outputs array alike', () => {
    const list = Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue }));
    expect(parseStackOutputs(JSON.stringify({ CivicEtl: outputs }), 'o.json')).toEqual(outputs);
    expect(parseStackOutputs(JSON.stringify({ Stacks: [{ StackName: 'CivicEtl', Outputs: list }] }), 'o.json')).toEqual(outputs);
    expect(parseStackOutputs(JSON.stringify(list), 'o.json')).toEqual(outputs);
  });

  it('asks which stack when the file holds several, and names them', () => {
    const two = JSON.stringify({ A: outputs, B: { StageQueueUrl: 'x' } });
    expect(() => parseStackOutputs(two, 'o.json')).toThrow('o.json holds the outputs of several stacks (A, B): name one with --stack');
    expect(parseStackOutputs(two, 'o.json', 'B')).toEqual({ StageQueueUrl: 'x' });
    expect(() => parseStackOutputs(two, 'o.json', 'C')).toThrow('o.json has no stack "C" (stacks: A, B)');
    expect(() => parseStackOutputs('{', 'o.json')).toThrow(/^o\.json: not JSON/);
  });

  it('finds each DLQ with the queue (or function) it returns to', () => {
    expect(queuesFromOutputs(outputs)).toEqual([
      { name: 'stage', dlqUrl: 'https://q/stage-dlq', dlqArn: 'arn:aws:sqs:eu-west-1:1:stage-dlq', targetUrl: 'https://q/stage', targetArn: undefined },
      { name: 'fetch', dlqUrl: 'https://q/fetch-dlq', dlqArn: undefined, fetchFunction: 'fetch-fn' },
    ]);
    expect(() => queuesFromOutputs({ LandingBucketName: 'b' })).toThrow('the stack outputs name no dead-letter queue');
  });
});

describe('a failed fetch in the fetch DLQ', () => {
  it("is the invocation record of a failed asynchronous invoke, or the schedule's input", () => {
    const record = { version: '1.0', requestContext: { functionArn: 'arn:aws:lambda:eu-west-1:1:function:fetch:$LATEST', condition: 'RetriesExhausted' }, requestPayload: { dataset: 'permits' } };
    expect(fetchPayloadOf({ Body: JSON.stringify(record) })).toEqual({ payload: { dataset: 'permits' }, functionArn: 'arn:aws:lambda:eu-west-1:1:function:fetch:$LATEST' });
    expect(fetchPayloadOf({ Body: '{"edfi":"district"}', MessageAttributes: { TARGET_ARN: { DataType: 'String', StringValue: 'arn:fn' } } })).toEqual({
      payload: { edfi: 'district' },
      functionArn: 'arn:fn',
    });
    expect(fetchPayloadOf({ Body: 'not json' })).toBeUndefined();
    expect(fetchPayloadOf({ Body: '{"other":1}' })).toBeUndefined();
  });
});

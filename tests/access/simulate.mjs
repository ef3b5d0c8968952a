// Reads {"policies": {role: policyDocument}, "account": "...", "requests": [{role, action, resource, context}]}
// on stdin and prints one decision per request ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied", or
// "error: …" when the simulator refuses the request as malformed) as a JSON list, in order.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { policies, account, requests } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const decisions = []
for (const { role, action, resource, context } of requests) {
  const result = await runSimulation(
    {
      identityPolicies: [{ name: `${role}Policy`, policy: policies[role] }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action,
        principal: `arn:aws:iam::${account}:role/${role}`,
        resource: { resource, accountId: account },
        contextVariables: context,
      },
    },
    {},
  )
  decisions.push(result.errors ? `error: ${JSON.stringify(result.errors)}` : result.result.analysis.result)
}
process.stdout.write(JSON.stringify(decisions))

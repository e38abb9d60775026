<?php
/**
 * Runs the WHMCS module's functions in a service's order, outside WHMCS, against a gateway:
 *   PANELQL_URL=… PANELQL_API_KEY=… php examples/whmcs/run_flow.php
 * A stand-in localAPI() keeps the custom field the way WHMCS would.
 */
define('PANELQL_STANDALONE', true);
require __DIR__ . '/panelql.php';

$stored = [];
function localAPI($command, $values)
{
    global $stored;  // WHMCS keeps every custom field; an update changes only those it names
    $stored = unserialize(base64_decode($values['customfields'])) + $stored;
    return ['result' => 'success'];
}

$params = [
    'serverhostname' => getenv('PANELQL_URL') ?: 'http://127.0.0.1:8000/graphql',
    'serversecure' => false,
    'serverpassword' => getenv('PANELQL_API_KEY'),
    'serviceid' => getenv('SERVICE_ID') ?: (string) random_int(1000, 999999),
    'userid' => '42', 'domain' => '', 'suspendreason' => 'Overdue on payment',
    'username' => 'whmcs42', 'password' => 'Wh-' . bin2hex(random_bytes(8)),
    'clientsdetails' => ['email' => 'client42@example.com', 'firstname' => 'Client',
                         'lastname' => 'FortyTwo'],
    'configoption1' => getenv('PANELQL_PROVIDER') ?: 'catalyst-main',
    'configoption2' => 'us-east', 'configoption3' => '2048', 'configoption4' => '1',
    'configoption5' => '10240', 'customfields' => [],
];

/**
 * What the client does in the browser on the provider's page. Only the demo's simulated
 * Stripe and PayPal can be paid with a form POST; real ones need a person (or their test
 * cards) on the hosted page.
 */
function pay_as_the_client(array $link)
{
    $ch = curl_init($link['url']);
    $form = $link['kind'] === 'ORDER' ? 'funding=balance' : 'card=success';
    curl_setopt_array($ch, [CURLOPT_POST => true, CURLOPT_POSTFIELDS => $form,
                            CURLOPT_RETURNTRANSFER => true, CURLOPT_FOLLOWLOCATION => false]);
    curl_exec($ch);
    $status = curl_getinfo($ch, CURLINFO_HTTP_CODE);
    curl_close($ch);
    step('client paid on the hosted page (HTTP ' . $status . ')', $status === 303 ? 'success' : 'refused');
}

function step($name, $result)
{
    global $params, $stored;
    $params['customfields'] = $stored;  // WHMCS passes the service's fields to every call
    $ok = $result === 'success' || (is_array($result) && $result['success']);
    echo ($ok ? 'ok   ' : 'FAIL ') . $name . ($ok ? '' : ': ' . json_encode($result)) . "\n";
    if (!$ok) {
        exit(1);
    }
}

step('TestConnection', panelql_TestConnection($params));
step('CreateAccount', panelql_CreateAccount($params));
$params['customfields'] = $stored;
step('CreateAccount again (idempotent)', panelql_CreateAccount($params));
$ref = panelql_call($params, 'query($id: ID!) { server(id: $id) { externalRef } }',
                    ['id' => panelql_server_id($params)])['server']['externalRef'];
step('externalRef reads back ' . $ref,
     $ref === 'whmcs:service:' . $params['serviceid'] ? 'success' : "got $ref");
function expect_suspended($params, $want)
{
    $server = panelql_call($params, 'query($id: ID!) { server(id: $id) { suspended status } }',
                           ['id' => panelql_server_id($params)])['server'];
    step('server suspended = ' . var_export($want, true),
         $server['suspended'] === $want ? 'success' : json_encode($server));
}

$owner = panelql_call($params, 'query($id: ID!) { server(id: $id) { owner { username email } } }',
                      ['id' => panelql_server_id($params)])['server']['owner'];
step('the server belongs to the client\'s panel user ' . $owner['username'],
     $owner['email'] === 'client42@example.com' ? 'success' : json_encode($owner));
$sso = panelql_ServiceSingleSignOn($params);
// catalyst-main has no login links: WHMCS shows PanelQL's reason instead of a redirect.
step('ServiceSingleSignOn: ' . ($sso['success'] ? 'redirect' : $sso['errorMsg']),
     $sso['success'] || strpos($sso['errorMsg'], 'NOT_SUPPORTED') === 0 ? 'success' : $sso);

step('SuspendAccount', panelql_SuspendAccount($params));
expect_suspended($params, true);
// The overdue invoice is paid through the billing provider behind PanelQL.
$billing = getenv('PANELQL_BILLING') ?: 'stripe';
$link = panelql_PaymentLink($params, $billing, '20.00', 'Service ' . $params['serviceid']);
step('PaymentLink ' . $link['kind'] . ' ' . $link['url'], $link['url'] ? 'success' : 'no url');
pay_as_the_client($link);
if ($link['kind'] === 'ORDER') {  // PayPal: the client approved; the merchant captures
    step('CapturePayment', panelql_CapturePayment($params, $link['invoice'], $link['order']) === 'PAID' ? 'success' : 'not paid');
}
$deadline = time() + 30;
while (panelql_InvoiceStatus($params, $link['invoice']) !== 'PAID' && time() < $deadline) {
    usleep(200000);  // the provider's webhook marks it paid
}
step('invoice PAID', panelql_InvoiceStatus($params, $link['invoice']) === 'PAID' ? 'success' : 'unpaid');
step('UnsuspendAccount', panelql_UnsuspendAccount($params));
expect_suspended($params, false);
// The same day, the next invoice is overdue too: a new suspension, not a replay of the first.
step('SuspendAccount again', panelql_SuspendAccount($params));
expect_suspended($params, true);
step('UnsuspendAccount again', panelql_UnsuspendAccount($params));
expect_suspended($params, false);
$params['configoption3'] = '4096';
step('ChangePackage', panelql_ChangePackage($params));
$refund = panelql_RefundInvoice($params, $link['invoice'], '10.00');
step('RefundInvoice half: ' . $refund['status'] . ' ' . $refund['amountRefunded']['amount'],
     $refund['status'] === 'PARTIALLY_REFUNDED' ? 'success' : json_encode($refund));
step('TerminateAccount', panelql_TerminateAccount($params));
echo "WHMCS flow done for service {$params['serviceid']}\n";

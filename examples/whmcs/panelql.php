<?php
/**
 * PanelQL provisioning module for WHMCS (modules/servers/panelql/panelql.php).
 *
 * WHMCS server settings: Hostname = the gateway's /graphql URL, Password = a PanelQL API key
 * with server.create, server.start, server.stop, server.suspend, server.update,
 * server.delete, customer.write and login.create (`panelql keys create --name whmcs --scope …`).
 * Product config options: connection name, region, memory/cpu/disk.
 * Product custom fields (admin only): "PanelQL Server ID" keeps the server's global ID,
 * "PanelQL Pending" the idempotency keys of actions not yet finished.
 *
 * Every call sends an idempotency key that names one intended action: a fresh key when WHMCS
 * asks for an action, the same key again when it retries that action after a timeout or a
 * panel outage, so a retried cron run never provisions or suspends twice, while a later
 * suspension (suspend, unsuspend, suspend again) really happens.
 */

if (!defined('WHMCS') && !defined('PANELQL_STANDALONE')) {
    die('This file cannot be accessed directly');
}

const PANELQL_SERVER_FIELD = 'PanelQL Server ID';
const PANELQL_PENDING_FIELD = 'PanelQL Pending';
// Errors after which a retry is a new decision, not the same attempt again.
const PANELQL_FINAL_CODES = ['BAD_USER_INPUT', 'CONFLICT', 'NOT_FOUND', 'FORBIDDEN',
                             'NOT_SUPPORTED', 'UNAUTHENTICATED'];

function panelql_MetaData()
{
    return ['DisplayName' => 'PanelQL', 'APIVersion' => '1.1', 'RequiresServer' => true];
}

function panelql_ConfigOptions()
{
    return [
        'Connection' => ['Type' => 'text', 'Size' => '25', 'Default' => 'catalyst-main',
                         'Description' => 'PanelQL provider connection name'],
        'Region' => ['Type' => 'text', 'Size' => '15', 'Default' => 'us-east'],
        'Memory (MB)' => ['Type' => 'text', 'Size' => '8', 'Default' => '2048'],
        'CPU cores' => ['Type' => 'text', 'Size' => '4', 'Default' => '1'],
        'Disk (MB)' => ['Type' => 'text', 'Size' => '8', 'Default' => '10240'],
    ];
}

/** One GraphQL call; throws with the error code PanelQL put in extensions.code. */
function panelql_call(array $params, $query, array $variables = [])
{
    $url = $params['serverhostname'] ?: 'http://127.0.0.1:8000/graphql';
    if (strpos($url, '://') === false) {
        $url = ($params['serversecure'] ? 'https://' : 'http://') . $url . '/graphql';
    }
    $ch = curl_init($url);
    curl_setopt_array($ch, [
        CURLOPT_POST => true,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 60,
        CURLOPT_HTTPHEADER => ['Content-Type: application/json',
                               'x-api-key: ' . $params['serverpassword']],
        CURLOPT_POSTFIELDS => json_encode(['query' => $query, 'variables' => (object) $variables]),
    ]);
    $raw = curl_exec($ch);
    $error = curl_error($ch);
    curl_close($ch);
    if ($raw === false) {
        throw new Exception('PanelQL unreachable: ' . $error);
    }
    $body = json_decode($raw, true);
    if (function_exists('logModuleCall')) {
        // One-time secrets (login URLs, initial passwords) are masked like the API key.
        $secrets = [$params['serverpassword']];
        array_walk_recursive($body, function ($value, $name) use (&$secrets) {
            if (in_array($name, ['url', 'initialPassword', 'password'], true) && is_string($value)) {
                $secrets[] = $value;
            }
        });
        logModuleCall('panelql', $query, $variables, $raw, $body, $secrets);
    }
    if (!empty($body['errors'])) {
        $first = $body['errors'][0];
        $code = isset($first['extensions']['code']) ? $first['extensions']['code'] : 'UNKNOWN';
        throw new Exception($code . ': ' . $first['message'], in_array($code, PANELQL_FINAL_CODES) ? 1 : 0);
    }
    return $body['data'];
}

/** Memory/CPU/disk from the product's config options; 0 or empty leaves it to the panel. */
function panelql_resources(array $params)
{
    $resources = ['memoryMb' => (int) $params['configoption3'],
                  'cpuCores' => (float) $params['configoption4'],
                  'diskMb' => (int) $params['configoption5']];
    return array_filter($resources, function ($v) { return $v > 0; });
}

function panelql_pending(array $params)
{
    $raw = isset($params['customfields'][PANELQL_PENDING_FIELD]) ? $params['customfields'][PANELQL_PENDING_FIELD] : '';
    $pending = json_decode($raw ?: '{}', true);
    return is_array($pending) ? $pending : [];
}

/**
 * Run $call with the idempotency key of this service's $action: the key left by an attempt
 * that did not finish (a retry: PanelQL replays or completes it), otherwise a new one. The key
 * is forgotten once the action has an answer, so the next request for it is a new action.
 */
function panelql_intent(array &$params, $action, callable $call)
{
    $pending = panelql_pending($params);
    if (empty($pending[$action])) {
        $pending[$action] = 'whmcs-' . $params['serviceid'] . '-' . $action . '-' . bin2hex(random_bytes(8));
        panelql_store_field($params, PANELQL_PENDING_FIELD, json_encode($pending));
    }
    try {
        $result = $call($pending[$action]);
    } catch (Exception $e) {
        if ($e->getCode() === 1) {  // a definite answer: this attempt is over
            unset($pending[$action]);
            panelql_store_field($params, PANELQL_PENDING_FIELD, json_encode($pending));
        }
        throw $e;
    }
    unset($pending[$action]);
    panelql_store_field($params, PANELQL_PENDING_FIELD, json_encode($pending));
    return $result;
}

function panelql_key(array $params, $action)
{
    // For what happens once per service (creation and its first start, the customer link):
    // the service id and the action are the whole intent.
    return 'whmcs-' . $params['serviceid'] . '-' . $action;
}

function panelql_wait(array $params, $operation, $timeout = 300)
{
    if (!$operation) {
        return;
    }
    $deadline = time() + $timeout;
    while (time() < $deadline) {
        $op = panelql_call($params, 'query($id: ID!) { operation(id: $id) { status step error { code message } } }',
                           ['id' => $operation['id']])['operation'];
        if ($op['status'] === 'SUCCEEDED') {
            return;
        }
        if ($op['status'] === 'FAILED') {
            throw new Exception('operation failed at ' . $op['step'] . ': ' . $op['error']['message']);
        }
        usleep(500000);
    }
    throw new Exception('operation still running; WHMCS will retry');
}

function panelql_server_id(array $params)
{
    $id = isset($params['customfields'][PANELQL_SERVER_FIELD]) ? $params['customfields'][PANELQL_SERVER_FIELD] : '';
    if ($id === '') {
        throw new Exception('this service has no PanelQL server yet');
    }
    return $id;
}

/**
 * A new order: PanelQL makes sure the client has a panel user (found by the client's link, or
 * created with the service's username and password and linked to whmcs:<clientid>), then
 * creates the server that user owns (placed on the least loaded node in the region). One
 * call with one idempotency key: a retry after a failure half-way finishes the job without a
 * second user or server.
 */
function panelql_CreateAccount(array $params)
{
    try {
        $email = isset($params['clientsdetails']['email']) ? $params['clientsdetails']['email'] : '';
        $name = trim((isset($params['clientsdetails']['firstname']) ? $params['clientsdetails']['firstname'] : '')
                     . ' ' . (isset($params['clientsdetails']['lastname']) ? $params['clientsdetails']['lastname'] : ''));
        $data = panelql_call($params, 'mutation($input: ProvisionServiceInput!, $key: String) {
            provisionService(input: $input, idempotencyKey: $key) {
                replayed accountCreated server { id } operation { id } } }', [
            'key' => panelql_key($params, 'create'),
            'input' => [
                'customerRef' => 'whmcs:' . $params['userid'],
                'provider' => $params['configoption1'],
                'account' => [
                    'username' => $params['username'], 'email' => $email,
                    'name' => $name ?: null, 'password' => $params['password'] ?: null,
                    // the client id: what VirtFusion keeps as extRelationId (an integer)
                    'externalRef' => (string) $params['userid'],
                ],
                'server' => [
                    // Catalyst names allow letters, digits, spaces, - and _ only (no '#', no dots).
                    'name' => 'Service ' . $params['serviceid'],
                    'placement' => ['region' => $params['configoption2']],
                    'resources' => panelql_resources($params),
                    'externalRef' => 'whmcs:service:' . $params['serviceid'],
                ],
            ],
        ]);
        $server = $data['provisionService']['server'];
        panelql_store_server_id($params, $server['id']);
        // The client's panel user is linked, so a customer-bound key for whmcs:<clientid>
        // sees this server through it; the direct link keeps it theirs if its owner changes.
        panelql_call($params, 'mutation($ref: String!, $id: ID!, $key: String) {
            linkCustomer(customerRef: $ref, resource: $id, idempotencyKey: $key) { link { customerRef } } }',
            ['ref' => 'whmcs:' . $params['userid'], 'id' => $server['id'],
             'key' => panelql_key($params, 'link')]);
        panelql_wait($params, $data['provisionService']['operation']);
        $start = panelql_call($params, 'mutation($id: ID!, $key: String) {
            startServer(id: $id, idempotencyKey: $key) { operation { id } } }',
            ['id' => $server['id'], 'key' => panelql_key($params, 'first-start')]);
        panelql_wait($params, $start['startServer']['operation']);
        return 'success';
    } catch (Exception $e) {
        return $e->getMessage();
    }
}

/**
 * WHMCS "Log in to control panel": a one-time login URL for the client's panel user where the
 * panel offers one (VirtFusion, DirectAdmin); elsewhere PanelQL's NOT_SUPPORTED says why.
 * The URL is a secret: it goes to the browser, never into WHMCS's module log.
 */
function panelql_ServiceSingleSignOn(array $params)
{
    try {
        $data = panelql_call($params, 'mutation($id: ID!) { createLoginUrl(resource: $id) { url } }',
                             ['id' => panelql_server_id($params)]);
        return ['success' => true, 'redirectTo' => $data['createLoginUrl']['url']];
    } catch (Exception $e) {
        return ['success' => false, 'errorMsg' => $e->getMessage()];
    }
}

function panelql_SuspendAccount(array $params)
{
    try {
        panelql_intent($params, 'suspend', function ($key) use ($params) {
            return panelql_call($params, 'mutation($id: ID!, $reason: String, $key: String) {
                suspendServer(id: $id, reason: $reason, idempotencyKey: $key) { server { status } } }', [
                'id' => panelql_server_id($params),
                'reason' => $params['suspendreason'] ?: 'Overdue on payment',
                'key' => $key,
            ]);
        });
        return 'success';
    } catch (Exception $e) {
        return $e->getMessage();
    }
}

function panelql_UnsuspendAccount(array $params)
{
    try {
        panelql_intent($params, 'unsuspend', function ($key) use ($params) {
            return panelql_call($params, 'mutation($id: ID!, $key: String) {
                unsuspendServer(id: $id, idempotencyKey: $key) { server { status } } }',
                ['id' => panelql_server_id($params), 'key' => $key]);
        });
        $start = panelql_intent($params, 'start', function ($key) use ($params) {
            return panelql_call($params, 'mutation($id: ID!, $key: String) {
                startServer(id: $id, idempotencyKey: $key) { operation { id } } }',
                ['id' => panelql_server_id($params), 'key' => $key]);
        });
        panelql_wait($params, $start['startServer']['operation']);
        return 'success';
    } catch (Exception $e) {
        return $e->getMessage();
    }
}

function panelql_ChangePackage(array $params)
{
    try {
        $resources = panelql_resources($params);
        $data = panelql_intent($params, 'package', function ($key) use ($params, $resources) {
            return panelql_call($params, 'mutation($id: ID!, $r: ResourcesInput!, $key: String) {
                updateServerResources(id: $id, resources: $r, idempotencyKey: $key) { operation { id } } }', [
                'id' => panelql_server_id($params), 'r' => $resources, 'key' => $key,
            ]);
        });
        panelql_wait($params, $data['updateServerResources']['operation']);
        return 'success';
    } catch (Exception $e) {
        return $e->getMessage();
    }
}

function panelql_TerminateAccount(array $params)
{
    try {
        $data = panelql_call($params, 'mutation($id: ID!, $key: String) {
            deleteServer(id: $id, finalBackup: true, idempotencyKey: $key) { deletedId operation { id } } }',
            ['id' => panelql_server_id($params), 'key' => panelql_key($params, 'terminate')]);
        panelql_wait($params, $data['deleteServer']['operation']);
        panelql_store_server_id($params, '');
        return 'success';
    } catch (Exception $e) {
        return $e->getMessage();
    }
}

function panelql_TestConnection(array $params)
{
    try {
        $data = panelql_call($params, '{ viewer { name scopes } providers { name health { ok error } } }');
        $down = array_filter($data['providers'], function ($p) { return !$p['health']['ok']; });
        return ['success' => !$down, 'error' => $down ? 'unhealthy: ' . implode(', ', array_column($down, 'name')) : ''];
    } catch (Exception $e) {
        return ['success' => false, 'error' => $e->getMessage()];
    }
}

/**
 * Money through the billing provider behind PanelQL (a Stripe or PayPal connection), for
 * setups where that provider, not a WHMCS gateway module, takes the payment. The invoice is
 * made for the WHMCS client ('whmcs:<userid>'): PanelQL finds or creates the provider's
 * customer and links it, so WHMCS never stores a Stripe or PayPal customer id. Returns the
 * invoice's global ID and the page where the client pays (Stripe Checkout, or a PayPal order
 * to approve; capture that with panelql_CapturePayment when the client comes back).
 * The key needs billing.write and billing.read.
 */
function panelql_PaymentLink(array &$params, $billing, $amount, $description, $currency = 'USD')
{
    $client = isset($params['clientsdetails']) ? $params['clientsdetails'] : [];
    $invoice = panelql_intent($params, 'invoice', function ($key) use ($params, $billing, $amount, $description, $currency, $client) {
        return panelql_call($params, 'mutation($input: CreateInvoiceInput!, $key: String) {
            createInvoice(input: $input, idempotencyKey: $key) { invoice { id } } }',
            ['key' => $key, 'input' => [
                'provider' => $billing, 'customerRef' => 'whmcs:' . $params['userid'],
                'email' => isset($client['email']) ? $client['email'] : 'client' . $params['userid'] . '@example.com',
                'currency' => $currency, 'externalRef' => 'whmcs:service:' . $params['serviceid'],
                'lines' => [['description' => $description, 'unitAmount' => $amount]]]]);
    })['createInvoice']['invoice'];
    $link = panelql_intent($params, 'checkout', function ($key) use ($params, $invoice) {
        return panelql_call($params, 'mutation($id: ID!, $key: String) {
            checkout(id: $id, returnUrl: "https://whmcs.example/clientarea.php", idempotencyKey: $key) {
              paymentLink { url kind id } } }', ['id' => $invoice['id'], 'key' => $key]);
    })['checkout']['paymentLink'];
    return ['invoice' => $invoice['id'], 'url' => $link['url'], 'kind' => $link['kind'],
            'order' => $link['id']];
}

/** PayPal: take the money of an order the client approved (they came back to returnUrl). */
function panelql_CapturePayment(array &$params, $invoiceId, $orderId)
{
    return panelql_intent($params, 'capture', function ($key) use ($params, $invoiceId, $orderId) {
        return panelql_call($params, 'mutation($id: ID!, $order: String!, $key: String) {
            capturePayment(id: $id, orderId: $order, idempotencyKey: $key) { invoice { status } } }',
            ['id' => $invoiceId, 'order' => $orderId, 'key' => $key]);
    })['capturePayment']['invoice']['status'];
}

/** PAID once the provider's webhook (or the capture) reached PanelQL. */
function panelql_InvoiceStatus(array $params, $invoiceId)
{
    return panelql_call($params, 'query($id: ID!) { invoice(id: $id) { status } }',
                        ['id' => $invoiceId])['invoice']['status'];
}

/** Give money back: $amount (a decimal string) or, null, all that is left. */
function panelql_RefundInvoice(array &$params, $invoiceId, $amount = null)
{
    return panelql_intent($params, 'refund', function ($key) use ($params, $invoiceId, $amount) {
        return panelql_call($params, 'mutation($id: ID!, $amount: String, $key: String) {
            refundInvoice(id: $id, amount: $amount, idempotencyKey: $key) {
              invoice { status amountRefunded { amount currency } } } }',
            ['id' => $invoiceId, 'amount' => $amount, 'key' => $key]);
    })['refundInvoice']['invoice'];
}

/** Keep the server's global ID on the service (WHMCS custom field), via WHMCS's local API. */
function panelql_store_server_id(array $params, $id)
{
    panelql_store_field($params, PANELQL_SERVER_FIELD, $id);
}

/** One custom field of the service, written through WHMCS's local API and kept in $params. */
function panelql_store_field(array &$params, $field, $value)
{
    $params['customfields'][$field] = $value;
    if (function_exists('localAPI')) {
        localAPI('UpdateClientProduct', ['serviceid' => $params['serviceid'],
            'customfields' => base64_encode(serialize([$field => $value]))]);
    }
}

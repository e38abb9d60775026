<?php
/**
 * PanelQL server extension for Paymenter (extensions/Servers/PanelQL/PanelQL.php).
 *
 * Written against Paymenter v1's server-extension shape (getConfig, getProductConfig,
 * createServer/suspendServer/unsuspendServer/upgradeServer/terminateServer receiving the
 * service, the product settings and the service properties); check the method signatures
 * against the Paymenter version you run. It talks plain curl so it has no dependencies.
 *
 * The server's global ID is returned from createServer as the property panelql_server_id,
 * which Paymenter stores on the service and passes back as $properties.
 *
 * Idempotency keys name one intended action: a new key when Paymenter asks for an action, the
 * same key when its job retries that action after a timeout or an outage. The key of an
 * unfinished action is kept in Laravel's cache (Paymenter is a Laravel application) until the
 * action has an answer, so suspend, unsuspend and suspend again each really happen.
 */

namespace Paymenter\Extensions\Servers\PanelQL;

use App\Classes\Extension\Server;
use Exception;
use Illuminate\Support\Facades\Cache;

class PanelQL extends Server
{
    // Errors after which a retry is a new decision, not the same attempt again.
    private const FINAL_CODES = ['BAD_USER_INPUT', 'CONFLICT', 'NOT_FOUND', 'FORBIDDEN',
                                 'NOT_SUPPORTED', 'UNAUTHENTICATED'];

    public function getConfig($values = [])
    {
        return [
            ['name' => 'url', 'label' => 'PanelQL /graphql URL', 'type' => 'text', 'required' => true],
            ['name' => 'api_key', 'label' => 'API key', 'type' => 'password', 'required' => true],
        ];
    }

    public function getProductConfig($values = [])
    {
        return [
            ['name' => 'provider', 'label' => 'Connection', 'type' => 'text', 'default' => 'catalyst-main'],
            ['name' => 'region', 'label' => 'Region', 'type' => 'text', 'default' => 'us-east'],
            ['name' => 'memory', 'label' => 'Memory (MB)', 'type' => 'number', 'default' => 2048],
            ['name' => 'cpu', 'label' => 'CPU cores', 'type' => 'number', 'default' => 1],
            ['name' => 'disk', 'label' => 'Disk (MB)', 'type' => 'number', 'default' => 10240],
        ];
    }

    public function testConfig(): bool|string
    {
        try {
            $this->graphql('{ viewer { name } }');
            return true;
        } catch (Exception $e) {
            return $e->getMessage();
        }
    }

    public function createServer($service, $settings, $properties)
    {
        // Least loaded node in the region with room for memory and disk (panels overcommit CPU).
        $candidates = $this->graphql('query($p: [String!], $r: String, $m: Int, $d: Int) {
            placementCandidates(provider: $p, region: $r, memoryMb: $m, diskMb: $d, first: 1) { node { id } } }',
            ['p' => [$settings['provider']], 'r' => $settings['region'], 'm' => (int) $settings['memory'],
             'd' => (int) $settings['disk']])['placementCandidates'];
        if (!$candidates) {
            throw new Exception("No node in {$settings['region']} has room for this product");
        }
        $data = $this->graphql('mutation($input: CreateServerInput!, $key: String) {
            createServer(input: $input, idempotencyKey: $key) { server { id } operation { id } } }', [
            'key' => "paymenter-{$service->id}-create",
            'input' => [
                'provider' => $settings['provider'], 'name' => "Service {$service->id}",
                'node' => $candidates[0]['node']['id'],
                'resources' => $this->resources($settings),
                'externalRef' => "paymenter:service:{$service->id}",
            ],
        ])['createServer'];
        $this->wait($data['operation']);
        $this->action('startServer', $data['server']['id'], "paymenter-{$service->id}-first-start");
        return ['panelql_server_id' => $data['server']['id']];
    }

    public function suspendServer($service, $settings, $properties)
    {
        $this->intent($service, 'suspend', fn ($key) => $this->graphql('mutation($id: ID!, $key: String) {
            suspendServer(id: $id, reason: "Overdue invoice", idempotencyKey: $key) { server { status } } }',
            ['id' => $properties['panelql_server_id'], 'key' => $key]));
        return true;
    }

    public function unsuspendServer($service, $settings, $properties)
    {
        $id = $properties['panelql_server_id'];
        $this->intent($service, 'unsuspend', fn ($key) => $this->graphql('mutation($id: ID!, $key: String) {
            unsuspendServer(id: $id, idempotencyKey: $key) { server { status } } }', ['id' => $id, 'key' => $key]));
        $this->intent($service, 'start', fn ($key) => $this->action('startServer', $id, $key));
        return true;
    }

    public function upgradeServer($service, $settings, $properties)
    {
        $resources = $this->resources($settings);
        $data = $this->intent($service, 'upgrade', fn ($key) => $this->graphql(
            'mutation($id: ID!, $r: ResourcesInput!, $key: String) {
            updateServerResources(id: $id, resources: $r, idempotencyKey: $key) { operation { id } } }',
            ['id' => $properties['panelql_server_id'], 'r' => $resources, 'key' => $key]));
        $this->wait($data['updateServerResources']['operation']);
        return true;
    }

    public function terminateServer($service, $settings, $properties)
    {
        $data = $this->graphql('mutation($id: ID!, $key: String) {
            deleteServer(id: $id, finalBackup: true, idempotencyKey: $key) { operation { id } } }',
            ['id' => $properties['panelql_server_id'], 'key' => "paymenter-{$service->id}-terminate"]);
        $this->wait($data['deleteServer']['operation']);
        return true;
    }

    /**
     * The client area's "Log in to the panel" button (Paymenter v1 getActions): a one-time
     * login URL where the panel has one (VirtFusion, DirectAdmin), made when the page is
     * shown and never stored; elsewhere the reason PanelQL gives (NOT_SUPPORTED) as text.
     */
    public function getActions($service, $settings, $properties)
    {
        try {
            $data = $this->graphql('mutation($id: ID!) { createLoginUrl(resource: $id) { url } }',
                                   ['id' => $properties['panelql_server_id']]);
            return [['type' => 'button', 'label' => 'Log in to the panel',
                     'url' => $data['createLoginUrl']['url']]];
        } catch (Exception $e) {
            return [['type' => 'text', 'label' => 'Panel login', 'text' => $e->getMessage()]];
        }
    }

    /**
     * An invoice on the billing connection behind PanelQL (Stripe or PayPal) for the
     * Paymenter user ('paymenter:<user id>'; PanelQL finds or creates and links the
     * provider's customer) and the page where they pay it: Stripe Checkout, or a PayPal order
     * to approve and then capturePayment(). Needs billing.write and billing.read.
     */
    public function paymentLink($service, $billing, $amount, $description, $email, $currency = 'USD')
    {
        $invoice = $this->intent($service, 'invoice', fn ($key) => $this->graphql(
            'mutation($input: CreateInvoiceInput!, $key: String) {
            createInvoice(input: $input, idempotencyKey: $key) { invoice { id } } }',
            ['key' => $key, 'input' => [
                'provider' => $billing, 'customerRef' => 'paymenter:' . ($service->user_id ?? $service->id),
                'email' => $email, 'currency' => $currency,
                'externalRef' => "paymenter:service:{$service->id}",
                'lines' => [['description' => $description, 'unitAmount' => $amount]]]]))['createInvoice']['invoice'];
        $link = $this->intent($service, 'checkout', fn ($key) => $this->graphql(
            'mutation($id: ID!, $key: String) { checkout(id: $id, returnUrl: "https://paymenter.example/invoices",
              idempotencyKey: $key) { paymentLink { url kind id } } }',
            ['id' => $invoice['id'], 'key' => $key]))['checkout']['paymentLink'];
        return ['invoice' => $invoice['id']] + $link;
    }

    /** PayPal: capture the order the user approved. */
    public function capturePayment($service, $invoiceId, $orderId)
    {
        return $this->intent($service, 'capture', fn ($key) => $this->graphql(
            'mutation($id: ID!, $order: String!, $key: String) {
            capturePayment(id: $id, orderId: $order, idempotencyKey: $key) { invoice { status } } }',
            ['id' => $invoiceId, 'order' => $orderId, 'key' => $key]))['capturePayment']['invoice']['status'];
    }

    /** PAID once the provider's webhook (or the capture) reached PanelQL. */
    public function invoiceStatus($invoiceId)
    {
        return $this->graphql('query($id: ID!) { invoice(id: $id) { status } }',
                              ['id' => $invoiceId])['invoice']['status'];
    }

    /** Give money back: $amount (decimal string) or, null, all that is left. */
    public function refundInvoice($service, $invoiceId, $amount = null)
    {
        return $this->intent($service, 'refund', fn ($key) => $this->graphql(
            'mutation($id: ID!, $amount: String, $key: String) {
            refundInvoice(id: $id, amount: $amount, idempotencyKey: $key) {
              invoice { status amountRefunded { amount currency } } } }',
            ['id' => $invoiceId, 'amount' => $amount, 'key' => $key]))['refundInvoice']['invoice'];
    }

    /**
     * Run $call with the idempotency key of this service's $action: the key an unfinished
     * attempt left (a retry), otherwise a new one; forgotten once the action has an answer.
     */
    private function intent($service, $action, callable $call)
    {
        $slot = "panelql:intent:{$service->id}:{$action}";
        $key = Cache::get($slot);
        if (!$key) {
            $key = "paymenter-{$service->id}-{$action}-" . bin2hex(random_bytes(8));
            Cache::put($slot, $key, 86400);  // PanelQL keeps idempotency records for 24 h
        }
        try {
            $result = $call($key);
        } catch (Exception $e) {
            if ($e->getCode() === 1) {
                Cache::forget($slot);
            }
            throw $e;
        }
        Cache::forget($slot);
        return $result;
    }

    private function resources($settings)
    {
        // 0 or empty leaves that dimension to the panel's default.
        return array_filter(['memoryMb' => (int) $settings['memory'], 'cpuCores' => (float) $settings['cpu'],
                             'diskMb' => (int) $settings['disk']], fn ($v) => $v > 0);
    }

    private function action($mutation, $id, $key)
    {
        $data = $this->graphql("mutation(\$id: ID!, \$key: String) {
            $mutation(id: \$id, idempotencyKey: \$key) { operation { id } } }", ['id' => $id, 'key' => $key]);
        $this->wait($data[$mutation]['operation']);
    }

    private function wait($operation, $timeout = 300)
    {
        $deadline = time() + $timeout;
        while ($operation && time() < $deadline) {
            $op = $this->graphql('query($id: ID!) { operation(id: $id) { status error { message } } }',
                                 ['id' => $operation['id']])['operation'];
            if ($op['status'] === 'SUCCEEDED') {
                return;
            }
            if ($op['status'] === 'FAILED') {
                throw new Exception('PanelQL operation failed: ' . $op['error']['message']);
            }
            usleep(500000);
        }
        if ($operation) {
            throw new Exception('PanelQL operation still running');
        }
    }

    private function graphql($query, $variables = [])
    {
        $ch = curl_init($this->config('url'));
        curl_setopt_array($ch, [
            CURLOPT_POST => true, CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 60,
            CURLOPT_HTTPHEADER => ['Content-Type: application/json', 'x-api-key: ' . $this->config('api_key')],
            CURLOPT_POSTFIELDS => json_encode(['query' => $query, 'variables' => (object) $variables]),
        ]);
        $raw = curl_exec($ch);
        curl_close($ch);
        $body = $raw === false ? null : json_decode($raw, true);
        if (!$body) {
            throw new Exception('PanelQL unreachable');
        }
        if (!empty($body['errors'])) {
            $code = $body['errors'][0]['extensions']['code'] ?? 'UNKNOWN';
            throw new Exception("$code: " . $body['errors'][0]['message'], in_array($code, self::FINAL_CODES) ? 1 : 0);
        }
        return $body['data'];
    }
}
